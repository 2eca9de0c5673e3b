with

source as (
    select * from {{ source('raw', 'campaigns') }}
),

cleaned as (
    select
        _source_system as source_system,
        trim(campaign_id) as campaign_id,
        nullif(trim(name), '') as campaign_name,
        {{ canonical_value('media', 'media') }} as media,
        {{ canonical_value('campaign_objective', 'objective') }} as objective,
        nullif(lower(trim(product_type)), '') as product_type,
        start_date,
        end_date,
        cost_per_contact,
        nullif(trim(subject), '') as subject,
        nullif(trim(message), '') as message,
        planned_control_share,
        nullif(trim(media), '') as source_media,
        nullif(trim(objective), '') as source_objective,
        {{ lineage_columns() }}
    from source
),

latest_version as (
    {{ latest_version('cleaned', ['source_system', 'campaign_id']) }}
),

final as (
    select * from latest_version
)

select * from final
