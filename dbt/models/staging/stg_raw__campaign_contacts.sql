{{
    config(
        materialized='incremental',
        unique_key=['source_system', 'campaign_id', 'source_customer_id', 'contacted_at'],
        incremental_strategy='delete+insert',
    )
}}
with

source as (
    {{ delivered_since_last_build(source('raw', 'campaign_contacts'), [
        '_source_system',
        'trim(campaign_id)',
        'trim(source_customer_id)',
        'contacted_at',
    ]) }}
),

cleaned as (
    select
        _source_system as source_system,
        trim(campaign_id) as campaign_id,
        trim(source_customer_id) as source_customer_id,
        contacted_at,
        coalesce(is_control, false) as is_control,
        responded_at,
        {{ canonical_value('campaign_response', 'response') }} as response,
        nullif(trim(order_id), '') as order_id,
        nullif(trim(response), '') as source_response,
        {{ lineage_columns() }}
    from source
),

latest_version as (
    {{ latest_version('cleaned', ['source_system', 'campaign_id', 'source_customer_id', 'contacted_at']) }}
),

final as (
    select * from latest_version
)

select * from final
