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
        _source_file as source_file,
        _row_number as source_row_number,
        _loaded_at as loaded_at
    from source
),

latest_version as (
    -- A record delivered again (a newer extract, a corrected file) counts once: its latest version.
    select *
    from cleaned
    qualify row_number() over (
        partition by source_system, source_customer_id
        order by updated_at desc nulls last, loaded_at desc, source_file desc, source_row_number desc
    ) = 1
),

final as (
    select * from latest_version
)

select * from final
