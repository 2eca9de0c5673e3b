-- One row per customer and cut: the CLV model inputs (Fader, Hardie & Lee) at day grain, in the configured
-- time unit. Same-day orders are one purchase day and a return counts net into its day; a day with only
-- returns is no purchase. frequency = repeat purchase days, recency = first to last purchase day,
-- T = first purchase day to the cut's end, monetary_value = mean net of the repeat purchase days.
-- margin_rate (both cuts): the customer's gross margin on all purchases to as_of, costs known or at the
-- default margin, within [0, 1]; CLV is spend times it.
-- Cuts: 'production' ends at as_of; 'calibration' ends var('clv_holdout') units earlier and carries the
-- holdout actuals (purchase days after it, up to as_of) for the backtest.
{%- set days_per_unit = 7 if var('clv_time_unit') == 'week' else 1 %}
with

-- Read twice: inlined, not copied (DuckDB 1.4 copies a CTE read twice, every column of it, into memory).
purchases as {{ inlined() }} (
    select * from {{ ref('fct_purchases') }}
),

observation_window as (
    select * from {{ ref('observation_window') }}
),

cuts as (
    select
        'production' as cut,
        as_of as period_end,
        as_of
    from observation_window
    union all
    select
        'calibration' as cut,
        as_of - {{ var('clv_holdout') * days_per_unit }} as period_end,
        as_of
    from observation_window
),

purchase_days as (
    select
        customer_id,
        purchase_date,
        sum(amount) as net_amount
    from purchases
    group by customer_id, purchase_date
    having count(*) filter (where not is_return) > 0
),

margins as (
    select
        purchases.customer_id,
        greatest(least(
            1 - sum({{ cost_of_goods('purchases.amount', 'purchases.cost') }})::double / sum(purchases.amount)::double, 1
        ), 0) as margin_rate
    from purchases
    cross join observation_window
    where purchases.purchase_date <= observation_window.as_of
    group by purchases.customer_id
    having sum(purchases.amount) > 0
),

-- The same in both cuts (both end their holdout at as_of). A grouped minimum joined back, not a window over
-- every purchase day of both cuts (that window was a third of the model's time at 1,000,000 customers).
first_purchase_days as (
    select
        purchase_days.customer_id,
        min(purchase_days.purchase_date) as first_purchase_date
    from purchase_days
    cross join observation_window
    where purchase_days.purchase_date <= observation_window.as_of
    group by purchase_days.customer_id
),

numbered as (
    select
        cuts.cut,
        cuts.period_end,
        cuts.as_of,
        purchase_days.customer_id,
        purchase_days.purchase_date,
        purchase_days.net_amount,
        purchase_days.purchase_date <= cuts.period_end as in_period,
        first_purchase_days.first_purchase_date
    from purchase_days
    inner join first_purchase_days on purchase_days.customer_id = first_purchase_days.customer_id
    cross join cuts
    where purchase_days.purchase_date <= cuts.as_of
),

per_customer as (
    select
        cut,
        customer_id,
        any_value(period_end) as period_end,
        any_value(first_purchase_date) as first_purchase_date,
        count(*) filter (where in_period) - 1 as frequency,
        max(purchase_date) filter (where in_period) as last_purchase_date,
        coalesce(avg(net_amount) filter (where in_period and purchase_date > first_purchase_date), 0)
            as monetary_value,
        count(*) filter (where not in_period) as holdout_purchase_days
    from numbered
    group by cut, customer_id
    having min(purchase_date) <= any_value(period_end)
),

final as (
    select
        per_customer.customer_id,
        per_customer.cut,
        per_customer.period_end,
        per_customer.frequency,
        {{ days_between('per_customer.first_purchase_date', 'per_customer.last_purchase_date') }} / {{ days_per_unit }} as recency,
        {{ days_between('per_customer.first_purchase_date', 'per_customer.period_end') }} / {{ days_per_unit }} as t,
        per_customer.monetary_value::double as monetary_value,
        case when per_customer.cut = 'calibration' then per_customer.holdout_purchase_days end
            as holdout_purchase_days,
        round(coalesce(margins.margin_rate, {{ var('default_margin') }}), 6)::double as margin_rate,
        '{{ var("clv_time_unit") }}' as time_unit
    from per_customer
    left join margins on per_customer.customer_id = margins.customer_id
)

select * from final
