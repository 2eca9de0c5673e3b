-- One row per campaign with contacts: response, conversion of the contacted and of the control group, the lift
-- with its 95 % interval (Newcombe's hybrid score interval) and p-value (pooled two-proportion z-test), and
-- what the lift is worth: incremental conversions, revenue (with its standard error), gross profit, net of
-- the contact cost, and the return on it (docs/metrics.md, "Campaigns").
with

members as (
    select * from {{ ref('int_campaign_members') }}
),

campaigns as (
    select * from {{ ref('dim_campaigns') }}
),

observation_window as (
    select * from {{ ref('observation_window') }}
),

campaign_contacts as (
    select * from {{ ref('fct_campaign_contacts') }}
),

broken_hold_outs as (
    -- Records of the control group that the same campaign also contacted: the platform broke its hold-out.
    select
        source_system,
        campaign_id,
        count(distinct source_customer_id) as control_records_contacted
    from (
        select source_system, campaign_id, source_customer_id
        from campaign_contacts
        group by all
        having bool_or(is_control) and bool_or(not is_control)
    ) as both_ways
    group by all
),

per_campaign as (
    {{ campaign_measures('members', ['source_system', 'campaign_id']) }}
),

final as (
    select
        per_campaign.source_system,
        per_campaign.campaign_id,
        campaigns.campaign_name,
        campaigns.media,
        campaigns.objective,
        campaigns.product_type,
        campaigns.start_date,
        campaigns.end_date,
        campaigns.cost_per_contact,
        {{ campaign_measure_columns('per_campaign', 'campaigns.cost_per_contact * per_campaign.contacted') }},
        campaigns.planned_control_share,
        campaigns.actual_control_share,
        case
            when campaigns.planned_control_share > 0 and per_campaign.contacted + per_campaign.control > 0
                then {{ sample_ratio_p_value(
                    'per_campaign.control', 'per_campaign.contacted + per_campaign.control',
                    'campaigns.planned_control_share'
                ) }}
        end as sample_ratio_p_value,
        coalesce(sample_ratio_p_value < 0.001, false) as sample_ratio_mismatch,
        coalesce(broken_hold_outs.control_records_contacted, 0) as control_records_contacted,
        per_campaign.drawn_in_both_groups,
        per_campaign.attribution_complete,
        {{ var('attribution_days') }} as attribution_days,
        observation_window.as_of
    from per_campaign
    cross join observation_window
    left join campaigns
        on
            per_campaign.source_system = campaigns.source_system
            and per_campaign.campaign_id = campaigns.campaign_id
    left join broken_hold_outs
        on
            per_campaign.source_system = broken_hold_outs.source_system
            and per_campaign.campaign_id = broken_hold_outs.campaign_id
)

select * from final
