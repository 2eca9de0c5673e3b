-- Who may be offered something, decided before any offer is ranked (docs/metrics.md, "Next best offer"): one
-- row per customer with the first rule that bars them from an offer on their contact channel, in order - an
-- open complaint (service recovery first), no consented channel, a campaign contact in the last
-- var('contact_cooldown_days') days (a control-group draw is no contact), below-zero profit on a channel that
-- costs - or none; and whether they are held out this month: a deterministic var('offer_holdout_share'), by a
-- hash of customer and month, so the offers can be measured next period.
with

customers as (
    select * from {{ ref('customer_360') }}
),

members as (
    select * from {{ ref('int_campaign_members') }}
),

contact_channels as (
    select * from {{ ref('contact_channels') }}
),

last_contacts as (
    select
        customer_id,
        max(contacted_at) as last_contacted_at
    from members
    where not is_control
    group by customer_id
),

assessed as (
    select
        customers.customer_id,
        customers.as_of,
        customers.open_complaints,
        customers.service_tier,
        customers.complaint_recovery_allowance,
        customers.value_tier,
        customers.best_contact_channel,
        contact_channels.cost_per_contact as contact_cost,
        last_contacts.last_contacted_at,
        strftime(customers.as_of + interval 1 day, '%Y-%m') as offer_period
    from customers
    left join contact_channels on customers.best_contact_channel = contact_channels.channel
    left join last_contacts on customers.customer_id = last_contacts.customer_id
),

final as (
    select
        *,
        case
            when open_complaints > 0 then 'open_complaint'
            when best_contact_channel is null then 'no_consented_channel'
            when last_contacted_at::date > as_of - to_days({{ var('contact_cooldown_days') }})
                then 'contact_cooldown'
            when value_tier = 'below_zero' and contact_cost > 0 then 'below_zero_paid_channel'
        end as barred_by,
        (md5_number_upper(customer_id::varchar || ':' || offer_period) % 10000)
        < round({{ var('offer_holdout_share') }} * 10000) as is_holdout
    from assessed
)

select * from final
