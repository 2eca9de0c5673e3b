-- Every customer with an order up to as_of is scored once and lands in exactly one segment.
with buyers as (
    select distinct purchases.customer_id
    from {{ ref('fct_purchases') }} as purchases
    cross join {{ ref('observation_window') }} as observation_window
    where purchases.amount > 0 and purchases.purchase_date <= observation_window.as_of
),

scored as (
    select
        customer_id,
        count(*) as rows_per_customer,
        count(rfm_segment) as segments
    from {{ ref('customer_rfmt') }}
    group by customer_id
)

select
    buyers.customer_id,
    scored.rows_per_customer,
    scored.segments
from buyers
left join scored on buyers.customer_id = scored.customer_id
where scored.rows_per_customer is distinct from 1 or scored.segments is distinct from 1
