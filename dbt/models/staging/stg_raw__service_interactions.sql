{{
    config(
        materialized='incremental',
        unique_key=['source_system', 'interaction_id'],
        incremental_strategy='delete+insert',
    )
}}
with

source as (
    {{ delivered_since_last_build(source('raw', 'service_interactions'), ['_source_system', 'trim(interaction_id)']) }}
),

cleaned as (
    select
        _source_system as source_system,
        trim(interaction_id) as interaction_id,
        trim(source_customer_id) as source_customer_id,
        occurred_at,
        {{ canonical_value('service_channel', 'channel') }} as channel,
        {{ canonical_value('interaction_type', 'interaction_type') }} as interaction_type,
        nullif(trim(reason), '') as reason,
        {{ canonical_value('handled_by', 'handled_by') }} as handled_by,
        duration_seconds,
        is_resolved,
        resolved_at,
        nullif(trim(channel), '') as source_channel,
        nullif(trim(interaction_type), '') as source_interaction_type,
        nullif(trim(handled_by), '') as source_handled_by,
        {{ lineage_columns() }}
    from source
),

latest_version as (
    {{ latest_version('cleaned', ['source_system', 'interaction_id']) }}
),

final as (
    select * from latest_version
)

select * from final
