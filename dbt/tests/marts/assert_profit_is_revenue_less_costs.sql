-- profit = revenue - cost_of_goods - cost_to_serve - marketing_cost on every row, and below_zero <=> profit < 0.
select
    customer_id,
    revenue,
    cost_of_goods,
    cost_to_serve,
    marketing_cost,
    profit,
    value_tier
from {{ ref('customer_value') }}
where
    profit != revenue - cost_of_goods - cost_to_serve - marketing_cost
    or (value_tier = 'below_zero') != (profit < 0)
