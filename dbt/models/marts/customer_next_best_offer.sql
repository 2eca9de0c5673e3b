-- One row per customer: the next best offer (docs/metrics.md, "Next best offer") - the product type they do
-- not hold with the best expected incremental profit on their contact channel - or why they get none. The
-- eligibility rules apply before ranking: no open complaint (service recovery first: the allowance is shown
-- instead), a consented channel, no campaign contact in the last var('contact_cooldown_days') days, and a
-- below-zero customer only on a channel that costs nothing. A deterministic var('offer_holdout_share') of
-- customers, by a hash of customer and month, is held out so the offers can be measured next period.
with

customers as (
    select * from {{ ref('customer_360') }}
),

ranking as (
    select * from {{ ref('int_offer_ranking') }}
),

members as (
    select * from {{ ref('int_campaign_members') }}
),

last_contacts as (
    select
        customer_id,
        max(contacted_at) as last_contacted_at
    from members
    where not is_control
    group by customer_id
),

best as (
    select * from ranking where offer_rank = 1 and channel != 'service_desk'
),

assessed as (
    select
        customers.customer_id,
        customers.as_of,
        customers.open_complaints,
        customers.service_tier,
        customers.complaint_recovery_allowance,
        customers.value_tier,
        last_contacts.last_contacted_at,
        best.*exclude (customer_id),
        case
            when customers.open_complaints > 0 then 'open_complaint'
            when customers.best_contact_channel is null then 'no_consented_channel'
            when last_contacts.last_contacted_at::date > customers.as_of - to_days({{ var('contact_cooldown_days') }})
                then 'contact_cooldown'
            when customers.value_tier = 'below_zero' and best.cost_per_contact > 0 then 'below_zero_paid_channel'
            when best.offer_product_type is null then 'nothing_to_offer'
            when best.expected_incremental_profit <= 0 then 'no_profitable_offer'
            else 'eligible'
        end as eligibility,
        strftime(customers.as_of + interval 1 day, '%Y-%m') as offer_period
    from customers
    left join best on customers.customer_id = best.customer_id
    left join last_contacts on customers.customer_id = last_contacts.customer_id
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
                || printf('%.2f', complaint_recovery_allowance) || ', ' || service_tier || ' tier)'
            when eligibility = 'contact_cooldown' then
                'contacted by a campaign on ' || strftime(last_contacted_at, '%Y-%m-%d')
                || '; no offer within {{ var("contact_cooldown_days") }} days of a contact'
            when eligibility = 'below_zero_paid_channel' then
                'below-zero profit: offers only on channels that cost nothing (' || channel || ' costs R$ '
                || printf('%.3f', cost_per_contact) || ')'
            when eligibility = 'no_profitable_offer' then
                'no offer pays for its contact: the best, ' || offer_product_type || ', is expected to bring R$ '
                || printf('%.2f', expected_incremental_profit) || ' after the contact''s cost'
            when eligibility = 'nothing_to_offer' then 'holds every product type we could offer'
            else 'no consented contact channel'
        end as reason,
        case when eligibility = 'open_complaint' then complaint_recovery_allowance end as complaint_recovery_allowance,
        case when eligibility = 'eligible' then model_version end as model_version,
        (md5_number_upper(customer_id::varchar || ':' || offer_period) % 10000)
        < round({{ var('offer_holdout_share') }} * 10000) as is_holdout,
        offer_period,
        (as_of + interval 1 day)::date as valid_from
    from assessed
)

select * from final
