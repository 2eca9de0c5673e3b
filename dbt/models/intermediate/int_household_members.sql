-- One row per customer with a postal code: the household it belongs to (docs/identity.md, "Households").
-- Customers who share a postal address (CEP with street and number) are one household; without an address,
-- a CEP with a shared phone. These are the links identity resolution deliberately does not merge: people who
-- live together are different customers. Each customer's own key is its most recent record's (address first);
-- household_id is the smallest customer_id of the household (stable while its oldest member stays).
with

customers as (
    select * from {{ ref('stg_raw__customers') }}
),

id_map as (
    select * from {{ ref('customer_id_map') }}
),

record_keys as (
    select
        id_map.customer_id,
        case
            when customers.address_key is not null
                then 'address: ' || customers.postal_code_key || ' ' || customers.address_key
            when customers.phone_key is not null then 'phone: ' || customers.postal_code_key || ' ' || customers.phone_key
        end as household_key,
        case when customers.address_key is not null then 'address' else 'postal_code_and_phone' end as linked_by,
        customers.updated_at,
        customers.loaded_at
    from customers
    inner join id_map
        on
            customers.source_system = id_map.source_system
            and customers.source_customer_id = id_map.source_customer_id
    where customers.postal_code_key is not null
),

customer_keys as (
    select *
    from record_keys
    where household_key is not null
    qualify row_number() over (
        partition by customer_id
        order by linked_by = 'address' desc, updated_at desc nulls last, loaded_at desc, household_key
    ) = 1
),

final as (
    select
        customer_id,
        min(customer_id) over (partition by household_key) as household_id,
        count(*) over (partition by household_key) as household_members,
        linked_by
    from customer_keys
)

select * from final
