-- What one contact on each channel adds (docs/metrics.md, "Contacts only where they pay"): the pooled measured
-- lift in conversion of the channel's campaign medium (media_performance, every period, weighted by the
-- contacts measured), never below 0; for a medium never measured, the lift pooled over every medium; null with
-- no measured campaign at all (what reads it says what it assumes then).
with

contact_channels as (
    select * from {{ ref('contact_channels') }}
),

media_performance as (
    select * from {{ ref('media_performance') }}
    where pooled_lift_abs is not null and measured_contacted > 0
),

by_medium as (
    select
        media,
        sum(pooled_lift_abs * measured_contacted) / sum(measured_contacted) as measured_lift
    from media_performance
    group by media
),

overall as (
    select sum(pooled_lift_abs * measured_contacted) / nullif(sum(measured_contacted), 0) as measured_lift
    from media_performance
),

final as (
    select
        contact_channels.channel,
        contact_channels.cost_per_contact,
        contact_channels.campaign_medium,
        by_medium.measured_lift,
        greatest(coalesce(by_medium.measured_lift, overall.measured_lift), 0.0) as contact_uplift
    from contact_channels
    cross join overall
    left join by_medium on contact_channels.campaign_medium = by_medium.media
)

select * from final
