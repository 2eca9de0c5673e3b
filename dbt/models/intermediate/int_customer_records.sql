-- Every source customer the data knows: the customer files' records, and the customer ids that facts
-- reference but no customer file holds (a purchases-only source works alone; such ids are reported).
with

-- Read twice: inlined, not copied (DuckDB 1.4 copies a CTE read twice, every column of it, into memory).
customers as not materialized (
    select * from {{ ref('stg_raw__customers') }}
),

purchases as (
    select * from {{ ref('stg_raw__purchases') }}
),

service_interactions as (
    select * from {{ ref('stg_raw__service_interactions') }}
),

campaign_contacts as (
    select * from {{ ref('stg_raw__campaign_contacts') }}
),

consents as (
    select * from {{ ref('stg_raw__consents') }}
),

referenced_by_facts as (
    select
        source_system,
        source_customer_id
    from purchases
    union
    select
        source_system,
        source_customer_id
    from service_interactions
    union
    select
        source_system,
        source_customer_id
    from campaign_contacts
    union
    select
        source_system,
        source_customer_id
    from consents
),

records as (
    select
        source_system,
        source_customer_id,
        true as has_customer_record,
        coalesce(created_at, loaded_at) as first_seen_at
    from customers
    union all
    select
        referenced_by_facts.source_system,
        referenced_by_facts.source_customer_id,
        false as has_customer_record,
        null::timestamp as first_seen_at
    from referenced_by_facts
    anti join customers
        on
            referenced_by_facts.source_system = customers.source_system
            and referenced_by_facts.source_customer_id = customers.source_customer_id
),

final as (
    select
        {{ record_key('source_system', 'source_customer_id') }} as record_key,
        row_number() over (order by source_system, source_customer_id) as record_number,
        source_system,
        source_customer_id,
        has_customer_record,
        first_seen_at
    from records
)

select * from final
