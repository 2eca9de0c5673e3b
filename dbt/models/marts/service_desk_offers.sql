-- One row per customer the service desk may hear from next (docs/metrics.md, "Next best offer"): a service
-- contact in the last var('service_desk_recent_days') days or a protocol still open. What the desk's CRM screen
-- loads each morning: the customer's service tier, the route to serve them by, the recovery allowance when a
-- complaint is open (service recovery first: then no offer), and the offer to make at the contact, priced for
-- a contact that costs nothing more (seed contact_channels, channel service_desk).
with

customers as (
    select * from {{ ref('customer_360') }}
),

desk as (
    select * from {{ ref('int_service_desk_customers') }}
),

ranking as (
    select * from {{ ref('int_offer_ranking') }}
    where channel = 'service_desk' and offer_rank = 1
),

next_best_offers as (
    select * from {{ ref('customer_next_best_offer') }}
),

service_tiers as (
    select * from {{ ref('service_tiers') }}
),

assessed as (
    select
        desk.customer_id,
        desk.last_service_contact_at,
        desk.open_protocols,
        customers.service_tier,
        case
            when service_tiers.service_route = 'preferred_channel'
                then coalesce(customers.preferred_service_channel, 'agent')
            else service_tiers.service_route
        end as service_route,
        customers.open_complaints,
        customers.complaint_recovery_allowance as recovery_allowance,
        next_best_offers.is_holdout,
        next_best_offers.valid_from,
        {{ star_except('ranking', ['customer_id']) }},
        case
            when customers.open_complaints > 0 then 'open_complaint'
            when next_best_offers.is_holdout then 'holdout'
            when ranking.offer_product_type is null then 'nothing_to_offer'
            when ranking.expected_incremental_profit <= 0 then 'no_profitable_offer'
            else 'eligible'
        end as eligibility
    from desk
    inner join customers on desk.customer_id = customers.customer_id
    left join service_tiers on customers.value_tier = service_tiers.value_tier
    left join next_best_offers on desk.customer_id = next_best_offers.customer_id
    left join ranking on desk.customer_id = ranking.customer_id
),

final as (
    select
        customer_id,
        last_service_contact_at,
        open_protocols,
        service_tier,
        service_route,
        case when eligibility = 'open_complaint' then recovery_allowance end as complaint_recovery_allowance,
        eligibility,
        case when eligibility = 'eligible' then offer_product_type end as offer_product_type,
        case when eligibility = 'eligible' then predicted_uplift end as predicted_uplift,
        case when eligibility = 'eligible' then expected_incremental_profit end as expected_incremental_profit,
        case
            when eligibility = 'eligible' then {{ offer_reason() }}
            when eligibility = 'open_complaint' then
                'open complaint: recover it first (allowance R$ ' || {{ number_text('recovery_allowance', 2) }} || ')'
            when eligibility = 'holdout' then 'held out of the offers this month, to measure them'
            when eligibility = 'no_profitable_offer' then 'no offer is expected to pay'
            else 'holds every product type we could offer'
        end as reason,
        case when eligibility = 'eligible' then model_version end as model_version,
        is_holdout,
        valid_from
    from assessed
)

select * from final
