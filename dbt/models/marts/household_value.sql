-- One row per month: households, product types per household and revenue per household (ARPU), the texts'
-- "average products per household" over time (docs/metrics.md, "Households"). The base of a month is the
-- households with a purchase up to its end; product types held are those bought by any member up to then.
with

members as (
    select * from {{ ref('int_household_members') }}
),

purchases as (
    select * from {{ ref('fct_purchases') }}
),

observation_window as (
    select * from {{ ref('observation_window') }}
),

sales as (
    select
        members.household_id,
        purchases.product_type,
        purchases.amount,
        purchases.is_return,
        date_trunc('month', purchases.purchase_date)::date as month
    from members
    cross join observation_window
    inner join purchases on members.customer_id = purchases.customer_id
    where purchases.purchase_date <= observation_window.as_of
),

months as (
    select
        month,
        sum(amount) as revenue,
        count(distinct household_id) filter (where not is_return) as buying_households
    from sales
    group by month
),

first_purchase_months as (
    select household_id, min(month) as month
    from sales
    where not is_return
    group by household_id
),

first_type_months as (
    select household_id, product_type, min(month) as month
    from sales
    where not is_return and product_type is not null
    group by household_id, product_type
),

new_households as (
    select month, count(*) as households from first_purchase_months group by month
),

new_holdings as (
    select month, count(*) as holdings from first_type_months group by month
),

cumulative as (
    select
        months.month,
        months.revenue,
        months.buying_households,
        (sum(coalesce(new_households.households, 0)) over (order by months.month))::bigint as households,
        sum(coalesce(new_holdings.holdings, 0)) over (order by months.month) as holdings
    from months
    left join new_households on months.month = new_households.month
    left join new_holdings on months.month = new_holdings.month
),

final as (
    select
        cumulative.month,
        cumulative.households,
        cumulative.buying_households,
        cumulative.revenue::decimal(18, 4) as revenue,
        (cumulative.revenue / cumulative.households)::double as revenue_per_household,
        cumulative.holdings / cumulative.households as product_types_per_household,
        observation_window.as_of
    from cumulative
    cross join observation_window
)

select * from final
