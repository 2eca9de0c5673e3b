with

source as (
    select * from {{ source('raw', 'customers') }}
),

cleaned as (
    select
        _source_system as source_system,
        trim(source_customer_id) as source_customer_id,
        nullif(regexp_replace(trim(full_name), '\s+', ' ', 'g'), '') as full_name,
        nullif(trim(document_id), '') as document_id,
        nullif(lower(trim(email)), '') as email,
        nullif(trim(phone), '') as phone,
        birth_date,
        nullif(trim(city), '') as city,
        nullif(upper(trim(state)), '') as state,
        nullif(trim(postal_code), '') as postal_code,
        nullif(trim(loyalty_id), '') as loyalty_id,
        created_at,
        updated_at,
        {{ lineage_columns() }}
    from source
),

latest_version as (
    {{ latest_version('cleaned', ['source_system', 'source_customer_id'], newest_first='updated_at desc nulls last') }}
),

final as (
    select * from latest_version
)

select * from final
