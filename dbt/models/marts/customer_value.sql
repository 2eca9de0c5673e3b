-- Current profitability per customer over the trailing var('value_window_months') to as_of (docs/metrics.md):
-- profit = revenue - cost_of_goods - cost_to_serve - marketing_cost (int_customer_profit), and the value tier.
-- growth_potential = predicted CLV (profit over the CLV horizon, 0 without a purchase) - current profit:
-- what the customer may still bring beyond what they bring now. When this run's CLV could not be computed
-- (clv_status), clv and growth_potential are null and no customer is most_growable.
with

customer_profit as (
    select * from {{ ref('int_customer_profit') }}
),

customer_clv as (
    select * from {{ source('clv', 'customer_clv') }}
),

clv_status as (
    select * from {{ source('clv', 'clv_status') }}
),

with_profit as (
    select
        customer_profit.*,
        case when clv_status.fitted then coalesce(customer_clv.clv, 0) end::decimal(18, 4) as clv,
        coalesce(clv_status.clv_status, 'not fitted: the CLV step has not run') as clv_status
    from customer_profit
    left join clv_status on true
    left join customer_clv on customer_profit.customer_id = customer_clv.customer_id
),

with_growth as (
    select
        *,
        (clv - profit)::decimal(18, 4) as growth_potential
    from with_profit
),

ranked_by_profit as (
    select
        *,
        row_number() over (order by profit desc, customer_id asc) as profit_rank,
        count(*) over () as non_negative_customers
    from with_growth
    where profit >= 0
),

growth_candidates as (
    select
        *,
        row_number() over (order by growth_potential desc, customer_id asc) as growth_rank,
        count(*) over () as candidates
    from ranked_by_profit
    where
        profit_rank > ceil({{ var('most_valuable_share') }} * non_negative_customers)
        and growth_potential is not null
),

final as (
    select
        with_growth.customer_id,
        with_growth.revenue,
        with_growth.cost_of_goods,
        with_growth.cost_to_serve,
        with_growth.marketing_cost,
        with_growth.profit,
        with_growth.clv,
        with_growth.growth_potential,
        with_growth.clv_status,
        case
            when with_growth.profit < 0 then 'below_zero'
            when
                ranked_by_profit.profit_rank
                <= ceil({{ var('most_valuable_share') }} * ranked_by_profit.non_negative_customers)
                then 'most_valuable'
            when
                growth_candidates.growth_rank <= ceil({{ var('most_growable_share') }} * growth_candidates.candidates)
                then 'most_growable'
            else 'maintain'
        end as value_tier,
        -- A customer below zero either bought nothing in the window (lapsed, still costing service or
        -- contacts: stop mailing) or bought at a margin their costs exceed (change how they are served).
        case
            when with_growth.profit >= 0 then null
            when with_growth.revenue <= 0 then 'no_revenue_in_window'
            else 'costs_exceed_margin'
        end as below_zero_reason,
        with_growth.window_start,
        with_growth.as_of
    from with_growth
    left join ranked_by_profit on with_growth.customer_id = ranked_by_profit.customer_id
    left join growth_candidates on with_growth.customer_id = growth_candidates.customer_id
)

select * from final
