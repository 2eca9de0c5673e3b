{{
    config(
        materialized='incremental',
        unique_key=['source_system', 'source_customer_id', 'source_channel', 'recorded_at'],
        incremental_strategy='delete+insert',
    )
}}
with

source as (
    {{ delivered_since_last_build(source('raw', 'consents'), [
        '_source_system',
        'trim(source_customer_id)',
        'trim(channel)',
        'recorded_at',
    ]) }}
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
        {{ lineage_columns() }}
    from source
),

latest_version as (
    {{ latest_version('cleaned', ['source_system', 'source_customer_id', 'source_channel', 'recorded_at']) }}
),

final as (
    select * from latest_version
)

select * from final
