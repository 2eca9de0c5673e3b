-- One row per campaign (source_system, campaign_id): what it was, and whom it drew (docs/metrics.md).
with

campaigns as (
    select * from {{ ref('stg_raw__campaigns') }}
),

members as (
    select * from {{ ref('int_campaign_members') }}
),

drawn as (
    select
        source_system,
        campaign_id,
        count(*) filter (where not is_control) as contacted,
        count(*) filter (where is_control) as control,
        min(contacted_at) as first_contacted_at,
        max(contacted_at) as last_contacted_at
    from members
    group by all
),

final as (
    select
        campaigns.source_system,
        campaigns.campaign_id,
        campaigns.campaign_name,
        campaigns.media,
        campaigns.objective,
        campaigns.product_type,
        campaigns.subject,
        campaigns.message,
        campaigns.start_date,
        campaigns.end_date,
        campaigns.cost_per_contact,
        coalesce(drawn.contacted, 0) as contacted,
        coalesce(drawn.control, 0) as control,
        campaigns.planned_control_share::double as planned_control_share,
        drawn.control / nullif(drawn.contacted + drawn.control, 0) as actual_control_share,
        drawn.first_contacted_at,
        drawn.last_contacted_at,
        campaigns.loaded_at
    from campaigns
    left join drawn
        on
            campaigns.source_system = drawn.source_system
            and campaigns.campaign_id = drawn.campaign_id
)

select * from final
