-- One row per medium and calendar year of the campaigns' start: contacts, cost and the pooled lift with its
-- 95 % interval over the campaigns that had a control group (each campaign's lift weighted by its contacted:
-- the incremental conversions per contact), incremental profit per 1,000 contacts (docs/metrics.md).
with

performance as (
    select * from {{ ref('campaign_performance') }}
),

per_campaign as (
    select
        *,
        date_trunc('year', coalesce(start_date, as_of))::date as period_start,
        -- Agresti and Caffo's variance of a difference of proportions (one success and one failure added to
        -- each group), so that a small group with no or only conversions still has a variance.
        ((conversions_contacted + 1) / (contacted + 2)) * (1 - (conversions_contacted + 1) / (contacted + 2))
        / (contacted + 2)
        + ((conversions_control + 1) / (control + 2)) * (1 - (conversions_control + 1) / (control + 2))
        / (control + 2) as lift_variance
    from performance
),

per_media as (
    select
        media,
        period_start,
        count(*) as campaigns,
        count(*) filter (where lift_abs is not null) as campaigns_with_control,
        sum(contacted)::bigint as contacted,
        sum(control)::bigint as control,
        sum(responders) / nullif(sum(contacted), 0) as response_rate,
        sum(contact_cost) as contact_cost,
        (sum(contacted) filter (where lift_abs is not null))::bigint as measured_contacted,
        sum(incremental_conversions) as incremental_conversions,
        sqrt(sum(power(contacted, 2) * lift_variance) filter (where lift_abs is not null)) as incremental_conversions_se,
        sum(incremental_revenue) as incremental_revenue,
        sum(incremental_profit) as incremental_profit,
        sum(net_incremental_profit) as net_incremental_profit,
        any_value(as_of) as as_of
    from per_campaign
    group by all
),

final as (
    select
        media,
        period_start,
        (period_start + interval 1 year - interval 1 day)::date as period_end,
        campaigns,
        campaigns_with_control,
        contacted,
        control,
        response_rate,
        contact_cost,
        measured_contacted,
        incremental_conversions / measured_contacted as pooled_lift_abs,
        (incremental_conversions - {{ z_95() }} * incremental_conversions_se) / measured_contacted
            as pooled_lift_abs_ci_low,
        (incremental_conversions + {{ z_95() }} * incremental_conversions_se) / measured_contacted
            as pooled_lift_abs_ci_high,
        incremental_conversions,
        incremental_revenue,
        incremental_profit,
        net_incremental_profit,
        1000 * incremental_profit / measured_contacted as incremental_profit_per_1000_contacts,
        1000 * net_incremental_profit / measured_contacted as net_incremental_profit_per_1000_contacts,
        as_of
    from per_media
)

select * from final
