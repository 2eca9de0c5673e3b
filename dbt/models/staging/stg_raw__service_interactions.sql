with

source as (
    select * from {{ source('raw', 'service_interactions') }}
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
        _source_file as source_file,
        _row_number as source_row_number,
        _loaded_at as loaded_at
    from source
),

latest_version as (
    select *
    from cleaned
    qualify row_number() over (
        partition by source_system, interaction_id
        order by loaded_at desc, source_file desc, source_row_number desc
    ) = 1
),

final as (
    select * from latest_version
)

select * from final
