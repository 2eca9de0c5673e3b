-- What each customer brought and cost over the trailing var('value_window_months') to as_of (docs/metrics.md,
-- "Profit and value tiers"): revenue, cost of goods, cost to serve, marketing cost, profit, and the window.
-- Known before CLV is fitted: customer_value adds the CLV, growth potential and value tier; the offers'
-- eligibility reads who is below zero.
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
service_costs as {{ inlined() }} (
    select * from {{ ref('service_costs') }}
),

observation_window as (
    select
        as_of,
        as_of - interval {{ var('value_window_months') }} month as window_start
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
        observation_window.window_start::date as window_start,
        observation_window.as_of
    from customers
    cross join observation_window
    left join sales on customers.customer_id = sales.customer_id
    left join service on customers.customer_id = service.customer_id
    left join marketing on customers.customer_id = marketing.customer_id
),

with_profit as (
    select
        *,
        (revenue - cost_of_goods - cost_to_serve - marketing_cost)::decimal(18, 4) as profit
    from valued
),

final as (
    select * from with_profit
)

select * from final
