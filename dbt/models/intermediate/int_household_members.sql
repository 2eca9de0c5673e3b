-- One row per customer with a postal code and an address or a phone: the household it belongs to
-- (docs/identity.md, "Households"). These are the links identity resolution deliberately does not merge:
-- people who live together are different customers. A customer has up to two household keys, each from its
-- most recent record that has it: CEP with street and number, and CEP with phone. Customers sharing a key are
-- linked, and a household is a connected component of those links (one member may share the address with a
-- second and the phone with a third). A key held by more than var('household_max_members') customers links
-- nobody: a building without apartment numbers, a company switchboard or a placeholder is not a home.
-- household_id is the smallest customer_id of the household (stable while its oldest member stays).
{{ config(post_hook="{{ connected_components_cleanup() }}") }}
{% set graph -%}
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
        key_kinds.key_kind,
        key_kinds.key_value,
        customers.updated_at,
        customers.loaded_at
    from customers
    inner join id_map
        on
            customers.source_system = id_map.source_system
            and customers.source_customer_id = id_map.source_customer_id
    cross join lateral (
        select 'address' as key_kind, customers.postal_code_key || ' ' || customers.address_key as key_value
        union all
        select 'postal_code_and_phone', customers.postal_code_key || ' ' || customers.phone_key
    ) as key_kinds
    where customers.postal_code_key is not null and key_kinds.key_value is not null
),

customer_keys as (
    select
        customer_id,
        key_kind,
        key_value
    from record_keys
    qualify row_number() over (
        partition by customer_id, key_kind order by updated_at desc nulls last, loaded_at desc, key_value
    ) = 1
),

household_keys as (
    select
        key_kind,
        key_value
    from customer_keys
    group by all
    having count(*) between 2 and {{ var('household_max_members') }}
),

links as (
    select
        customer_keys.customer_id,
        linked.customer_id as linked_customer_id,
        customer_keys.key_kind
    from customer_keys
    semi join household_keys
        on
            customer_keys.key_kind = household_keys.key_kind
            and customer_keys.key_value = household_keys.key_value
    inner join customer_keys as linked
        on
            customer_keys.key_kind = linked.key_kind
            and customer_keys.key_value = linked.key_value
            and customer_keys.customer_id <> linked.customer_id
)
{%- endset %}

{{ graph }},

households as (
    {{ connected_components(graph, 'customer_keys', 'customer_id', 'links', 'customer_id', 'linked_customer_id') }}
),

linked_by as (
    select
        customer_id,
        {{ sorted_text('key_kind', "', '") }} as linked_by
    from links
    group by customer_id
),

final as (
    select
        households.node as customer_id,
        households.component as household_id,
        households.component_size as household_members,
        linked_by.linked_by
    from households
    left join linked_by on households.node = linked_by.customer_id
)

select * from final
