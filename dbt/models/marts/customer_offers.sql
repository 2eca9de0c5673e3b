-- The three best offers of each customer eligible for one (customer_next_best_offer), each with its channel,
-- predicted uplift, expected incremental profit and reason: what a CRM screen shows beside the next best offer.
with

next_best_offers as (
    select * from {{ ref('customer_next_best_offer') }}
),

ranking as (
    select * from {{ ref('int_offer_ranking') }}
),

offered as (
    select
        ranking.*,
        next_best_offers.is_holdout,
        next_best_offers.valid_from
    from ranking
    inner join next_best_offers on ranking.customer_id = next_best_offers.customer_id
    where
        next_best_offers.is_eligible
        and ranking.channel != 'service_desk'
        and ranking.offer_rank <= 3
        and ranking.expected_incremental_profit > 0
),

final as (
    select
        customer_id,
        offer_rank,
        offer_product_type,
        channel,
        predicted_uplift,
        margin_per_purchase,
        cost_per_contact as contact_cost,
        expected_incremental_profit,
        affinity_antecedent as because_holds,
        affinity_lift,
        {{ offer_reason() }} as reason,
        model_version,
        is_holdout,
        valid_from
    from offered
)

select * from final
