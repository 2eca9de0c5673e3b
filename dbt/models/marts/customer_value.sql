-- Current profitability per customer over the trailing var('value_window_months') to as_of (DESIGN §7):
-- profit = revenue - cost_of_goods - cost_to_serve - marketing_cost, and the value tier.
-- growth_potential, until CLV exists, is a documented proxy: how much more recent the customer is than
-- their frequency and spend (r_score - mean(f_score, m_score)), then their average order value.
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

service_costs as (
    select * from {{ ref('service_costs') }}
),

customer_rfmt as (
    select * from {{ ref('customer_rfmt') }}
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
        sum(coalesce(purchases.cost, purchases.amount * (1 - {{ var('default_margin') }}))) as cost_of_goods
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
        coalesce(customer_rfmt.r_score - (customer_rfmt.f_score + customer_rfmt.m_score) / 2, -5)
            as growth_potential,
        coalesce(customer_rfmt.monetary / nullif(customer_rfmt.frequency, 0), 0) as average_order_value
    from customers
    left join sales on customers.customer_id = sales.customer_id
    left join service on customers.customer_id = service.customer_id
    left join marketing on customers.customer_id = marketing.customer_id
    left join customer_rfmt on customers.customer_id = customer_rfmt.customer_id
),

with_profit as (
    select
        *,
        revenue - cost_of_goods - cost_to_serve - marketing_cost as profit
    from valued
),

ranked_by_profit as (
    select
        *,
        row_number() over (order by profit desc, customer_id asc) as profit_rank,
        count(*) over () as non_negative_customers
    from with_profit
    where profit >= 0
),

growth_candidates as (
    select
        *,
        row_number() over (order by growth_potential desc, average_order_value desc, customer_id asc) as growth_rank,
        count(*) over () as candidates
    from ranked_by_profit
    where profit_rank > ceil({{ var('most_valuable_share') }} * non_negative_customers)
),

final as (
    select
        with_profit.customer_id,
        with_profit.revenue,
        with_profit.cost_of_goods,
        with_profit.cost_to_serve,
        with_profit.marketing_cost,
        with_profit.profit,
        with_profit.growth_potential::double as growth_potential,
        case
            when with_profit.profit < 0 then 'below_zero'
            when
                ranked_by_profit.profit_rank
                <= ceil({{ var('most_valuable_share') }} * ranked_by_profit.non_negative_customers)
                then 'most_valuable'
            when
                growth_candidates.growth_rank <= ceil({{ var('most_growable_share') }} * growth_candidates.candidates)
                then 'most_growable'
            else 'maintain'
        end as value_tier,
        observation_window.window_start::date as window_start,
        observation_window.as_of
    from with_profit
    cross join observation_window
    left join ranked_by_profit on with_profit.customer_id = ranked_by_profit.customer_id
    left join growth_candidates on with_profit.customer_id = growth_candidates.customer_id
)

select * from final
