with

records as (
    select * from {{ ref('int_identity_clusters') }}
),

id_map as (
    select * from {{ ref('customer_id_map') }}
),

candidates as (
    select * from {{ ref('int_customer_attribute_candidates') }}
),

golden_values as (
    pivot (
        select
            customer_id,
            attribute,
            candidate_value
        from candidates
        where survivor_rank = 1
    )
    on attribute in (full_name, email, phone, document_id, birth_date, city, state, postal_code, loyalty_id)
    using any_value(candidate_value)
    group by customer_id
),

customer_records as (
    select
        id_map.customer_id,
        list(distinct id_map.source_system order by id_map.source_system) as source_systems,
        count(*) as source_records,
        bool_or(id_map.has_customer_record) as has_customer_record,
        min(records.first_seen_at) as first_seen_at
    from id_map
    inner join records
        on
            id_map.source_system = records.source_system
            and id_map.source_customer_id = records.source_customer_id
    group by id_map.customer_id
),

final as (
    select
        customer_records.customer_id,
        golden_values.full_name,
        golden_values.email,
        golden_values.phone,
        golden_values.document_id,
        golden_values.birth_date::date as birth_date,
        golden_values.city,
        golden_values.state,
        golden_values.postal_code,
        golden_values.loyalty_id,
        customer_records.first_seen_at,
        customer_records.source_systems,
        customer_records.source_records,
        customer_records.has_customer_record
    from customer_records
    left join golden_values on customer_records.customer_id = golden_values.customer_id
)

select * from final
