-- Champions (bought recently, often, and much) with an e-mail: the loyalty programme's thank-you and early
-- access e-mail. "Reward them: they can become early adopters and promoters."
with

customers as (
    select * from {{ ref('customer_360') }}
),

final as (
    select
        customer_id,
        full_name,
        email,
        rfm_segment,
        orders,
        lifetime_spend,
        last_purchase_at
    from customers
    where rfm_segment = 'Champions' and email is not null
)

select * from final
