with

source as (
    select * from {{ source('raw', 'consents') }}
),

cleaned as (
    select
        _source_system as source_system,
        trim(source_customer_id) as source_customer_id,
        {{ canonical_value('consent_channel', 'channel') }} as channel,
        {{ canonical_value('consent_status', 'status') }} as status,
        recorded_at,
        nullif(trim(legal_basis), '') as legal_basis,
        trim(channel) as source_channel,
        trim(status) as source_status,
        _source_file as source_file,
        _row_number as source_row_number,
        _loaded_at as loaded_at
    from source
),

latest_version as (
    select *
    from cleaned
    qualify row_number() over (
        partition by source_system, source_customer_id, source_channel, recorded_at
        order by loaded_at desc, source_file desc, source_row_number desc
    ) = 1
),

final as (
    select * from latest_version
)

select * from final
