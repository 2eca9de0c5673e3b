-- One row per customer: the next best offer (docs/metrics.md, "Next best offer") - the product type they do
-- not hold with the best expected incremental profit on their contact channel - or why they get none: the rule
-- that barred them before ranking (int_offer_eligibility: an open complaint, with the allowance to recover it
-- shown instead; no consented channel; a recent campaign contact; below zero on a paid channel), or, after
-- ranking, nothing left to offer or no offer that pays for its contact. Held-out customers keep their offer
-- here, flagged, and are left out of what goes to them.
with

eligibility as (
    select * from {{ ref('int_offer_eligibility') }}
),

customers as (
    select * from {{ ref('customer_360') }}
),

best as (
    select * from {{ ref('int_offer_ranking') }}
    where offer_rank = 1 and channel != 'service_desk'
),

assessed as (
    select
        eligibility.*,
        customers.service_tier,
        customers.complaint_recovery_allowance,
        {{ star_except('best', ['customer_id', 'channel']) }},
        coalesce(
            eligibility.barred_by,
            case
                when best.offer_product_type is null then 'nothing_to_offer'
                when best.expected_incremental_profit <= 0 then 'no_profitable_offer'
                else 'eligible'
            end
        ) as eligibility,
        eligibility.best_contact_channel as channel
    from eligibility
    inner join customers on eligibility.customer_id = customers.customer_id
    left join best on eligibility.customer_id = best.customer_id
),

final as (
    select
        customer_id,
        eligibility,
        eligibility = 'eligible' as is_eligible,
        case when eligibility = 'eligible' then offer_product_type end as offer_product_type,
        case when eligibility = 'eligible' then channel end as channel,
        case when eligibility = 'eligible' then predicted_uplift end as predicted_uplift,
        case when eligibility = 'eligible' then margin_per_purchase end as margin_per_purchase,
        case when eligibility = 'eligible' then cost_per_contact end as contact_cost,
        case when eligibility = 'eligible' then expected_incremental_profit end as expected_incremental_profit,
        case when eligibility = 'eligible' then affinity_antecedent end as because_holds,
        case when eligibility = 'eligible' then affinity_lift end as affinity_lift,
        case
            when eligibility = 'eligible' then {{ offer_reason() }}
            when eligibility = 'open_complaint' then
                'open complaint: service recovery first (allowance R$ '
                || {{ number_text('complaint_recovery_allowance', 2) }} || ', ' || service_tier || ' tier)'
            when eligibility = 'contact_cooldown' then
                'contacted by a campaign on ' || cast(cast(last_contacted_at as date) as string)
                || '; no offer within {{ var("contact_cooldown_days") }} days of a contact'
            when eligibility = 'below_zero_paid_channel' then
                'below-zero profit: offers only on channels that cost nothing (' || channel || ' costs R$ '
                || {{ number_text('contact_cost', 3) }} || ')'
            when eligibility = 'no_profitable_offer' then
                'no offer pays for its contact: the best, ' || offer_product_type || ', is expected to bring R$ '
                || {{ number_text('expected_incremental_profit', 2) }} || {{ text_literal(" after the contact's cost") }}
            when eligibility = 'nothing_to_offer' then 'holds every product type we could offer'
            else 'no consented contact channel'
        end as reason,
        case when eligibility = 'open_complaint' then complaint_recovery_allowance end as complaint_recovery_allowance,
        case when eligibility = 'eligible' then model_version end as model_version,
        is_holdout,
        offer_period,
        (as_of + interval 1 day)::date as valid_from
    from assessed
)

select * from final
