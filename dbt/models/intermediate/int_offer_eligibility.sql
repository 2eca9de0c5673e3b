-- Who may be offered something, decided before any offer is scored or ranked (docs/metrics.md, "Next best
-- offer"): one row per customer with the first rule that bars them from an offer on their contact channel, in
-- order - an open complaint (service recovery first; counted as customer_360.open_complaints counts them), no
-- consented channel, a campaign contact in the last var('contact_cooldown_days') days (a control-group draw is
-- no contact), below-zero profit (int_customer_profit, customer_value's below_zero tier) on a channel that
-- costs - or none; and whether they are held out this month: a deterministic var('offer_holdout_share'), by a
-- hash of customer and month, so the offers can be measured next period. Known before CLV is fitted, so only
-- the customers no rule bars get features and scores.
with

customers as (
    select * from {{ ref('dim_customers') }}
),

service_interactions as (
    select * from {{ ref('fct_service_interactions') }}
),

customer_profit as (
    select * from {{ ref('int_customer_profit') }}
),

customer_channels as (
    select * from {{ ref('int_customer_contact_channel') }}
),

contact_channels as (
    select * from {{ ref('contact_channels') }}
),

members as (
    select * from {{ ref('int_campaign_members') }}
),

observation_window as (
    select * from {{ ref('observation_window') }}
),

open_complaints as (
    select
        customer_id,
        count(*) as open_complaints
    from service_interactions
    where {{ is_open_complaint('service_interactions') }}
    group by customer_id
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
        observation_window.as_of,
        coalesce(open_complaints.open_complaints, 0) as open_complaints,
        customer_profit.profit < 0 as is_below_zero,
        customer_channels.best_contact_channel,
        contact_channels.cost_per_contact as contact_cost,
        last_contacts.last_contacted_at,
        left(cast(observation_window.as_of + interval 1 day as string), 7) as offer_period
    from customers
    cross join observation_window
    left join open_complaints on customers.customer_id = open_complaints.customer_id
    left join customer_profit on customers.customer_id = customer_profit.customer_id
    left join customer_channels on customers.customer_id = customer_channels.customer_id
    left join contact_channels on customer_channels.best_contact_channel = contact_channels.channel
    left join last_contacts on customers.customer_id = last_contacts.customer_id
),

final as (
    select
        *,
        case
            when open_complaints > 0 then 'open_complaint'
            when best_contact_channel is null then 'no_consented_channel'
            when last_contacted_at::date > as_of - interval {{ var('contact_cooldown_days') }} day
                then 'contact_cooldown'
            when is_below_zero and contact_cost > 0 then 'below_zero_paid_channel'
        end as barred_by,
        {{ md5_bucket("customer_id::string || ':' || offer_period", 10000) }}
        < round({{ var('offer_holdout_share') }} * 10000) as is_holdout
    from assessed
)

select * from final
