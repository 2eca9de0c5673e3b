-- Current profitability per customer over the trailing var('value_window_months') to as_of (docs/metrics.md):
-- profit = revenue - cost_of_goods - cost_to_serve - marketing_cost, and the value tier.
-- growth_potential = predicted CLV (profit over the CLV horizon, 0 without a purchase) - current profit:
-- what the customer may still bring beyond what they bring now. When this run's CLV could not be computed
-- (clv_status), clv and growth_potential are null and no customer is most_growable.
with

customers as (
    select * from {{ ref('dim_customers') }}
),

purchases as (
    select * from {{ ref('fct_purchases') }}
),

service_interactions as (
    select * from {{ ref('fct_service_interactions') }}
),

campaign_contacts as (
    select * from {{ ref('fct_campaign_contacts') }}
),

-- Read twice: inlined, not copied (DuckDB 1.4 copies a CTE read twice, every column of it, into memory).
service_costs as not materialized (
    select * from {{ ref('service_costs') }}
),

customer_clv as (
    select * from {{ source('clv', 'customer_clv') }}
),

clv_status as (
    select * from {{ source('clv', 'clv_status') }}
),

observation_window as (
    select
        as_of,
        as_of - interval ({{ var('value_window_months') }}) month as window_start
    from {{ ref('observation_window') }}
),

sales as (
    select
        purchases.customer_id,
        sum(purchases.amount) as revenue,
        sum({{ cost_of_goods('purchases.amount', 'purchases.cost') }}) as cost_of_goods
    from purchases
    cross join observation_window
    where
        purchases.purchase_date > observation_window.window_start
        and purchases.purchase_date <= observation_window.as_of
    group by purchases.customer_id
),

service as (
    -- Unit cost per channel and handler, else the channel's default (handled_by = '*').
    select
        service_interactions.customer_id,
        sum(coalesce(exact_cost.unit_cost, channel_cost.unit_cost, 0)) as cost_to_serve
    from service_interactions
    cross join observation_window
    left join service_costs as exact_cost
        on
            service_interactions.channel = exact_cost.channel
            and service_interactions.handled_by = exact_cost.handled_by
    left join service_costs as channel_cost
        on
            service_interactions.channel = channel_cost.channel
            and channel_cost.handled_by = '*'
    where
        service_interactions.occurred_at::date > observation_window.window_start
        and service_interactions.occurred_at::date <= observation_window.as_of
    group by service_interactions.customer_id
),

marketing as (
    -- Control-group members are not contacted: they cost nothing.
    select
        campaign_contacts.customer_id,
        sum(coalesce(campaign_contacts.cost_per_contact, 0)) as marketing_cost
    from campaign_contacts
    cross join observation_window
    where
        not campaign_contacts.is_control
        and campaign_contacts.contacted_at::date > observation_window.window_start
        and campaign_contacts.contacted_at::date <= observation_window.as_of
    group by campaign_contacts.customer_id
),

valued as (
    select
        customers.customer_id,
        coalesce(sales.revenue, 0)::decimal(18, 4) as revenue,
        coalesce(sales.cost_of_goods, 0)::decimal(18, 4) as cost_of_goods,
        coalesce(service.cost_to_serve, 0)::decimal(18, 4) as cost_to_serve,
        coalesce(marketing.marketing_cost, 0)::decimal(18, 4) as marketing_cost,
        case when clv_status.fitted then coalesce(customer_clv.clv, 0) end::decimal(18, 4) as clv,
        coalesce(clv_status.clv_status, 'not fitted: the CLV step has not run') as clv_status
    from customers
    left join clv_status on true
    left join sales on customers.customer_id = sales.customer_id
    left join service on customers.customer_id = service.customer_id
    left join marketing on customers.customer_id = marketing.customer_id
    left join customer_clv on customers.customer_id = customer_clv.customer_id
),

with_profit as (
    select
        *,
        revenue - cost_of_goods - cost_to_serve - marketing_cost as profit
    from valued
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
        observation_window.window_start::date as window_start,
        observation_window.as_of
    from with_growth
    cross join observation_window
    left join ranked_by_profit on with_growth.customer_id = ranked_by_profit.customer_id
    left join growth_candidates on with_growth.customer_id = growth_candidates.customer_id
)

select * from final
