-- One row per customer, attribute and candidate value, with what survivorship ranks it by: the source's
-- priority for the attribute (seed source_priority; lower wins, unlisted sources last), how recent, how
-- frequent among the customer's records. survivor_rank = 1 is the golden value.
with

customers as (
    select * from {{ ref('stg_raw__customers') }}
),

id_map as (
    select * from {{ ref('customer_id_map') }}
),

source_priority as (
    select * from {{ ref('source_priority') }}
),

attribute_values as (
    unpivot (
        select
            id_map.customer_id,
            customers.source_system,
            customers.source_customer_id,
            coalesce(customers.updated_at, customers.created_at, customers.loaded_at) as observed_at,
            customers.full_name,
            customers.email_key as email,
            customers.phone_key as phone,
            customers.document_key as document_id,
            strftime(customers.birth_date, '%Y-%m-%d') as birth_date,
            customers.city,
            customers.state,
            customers.postal_code,
            customers.loyalty_key as loyalty_id
        from customers
        inner join id_map
            on
                customers.source_system = id_map.source_system
                and customers.source_customer_id = id_map.source_customer_id
    )
    on full_name, email, phone, document_id, birth_date, city, state, postal_code, loyalty_id
    into name attribute value candidate_value
),

prioritised as (
    select
        attribute_values.*,
        coalesce(
            min(source_priority.priority) filter (where source_priority.attribute = attribute_values.attribute),
            min(source_priority.priority) filter (where source_priority.attribute = '*'),
            1000
        ) as priority
    from attribute_values
    left join source_priority on attribute_values.source_system = source_priority.source_system
    group by all
),

counted as (
    select
        *,
        count(*) over (partition by customer_id, attribute, candidate_value) as frequency
    from prioritised
),

final as (
    select
        *,
        row_number() over (
            partition by customer_id, attribute
            order by priority asc, observed_at desc nulls last, frequency desc, candidate_value asc
        ) as survivor_rank
    from counted
)

select * from final
