-- Champions (bought recently, often, and much) with an e-mail: the loyalty programme's thank-you and early
-- access e-mail. "Reward them: they can become early adopters and promoters."
with

customers as (
    select * from {{ ref('customer_360') }}
),

contact_uplift as (
    {{ contact_uplift_of('email') }}
),

final as (
    select
        customer_id,
        full_name,
        email,
        rfm_segment,
        orders,
        lifetime_spend,
        last_purchase_at,
        {{ contact_pays_columns('clv') }}
    from customers
    cross join contact_uplift
    where rfm_segment = 'Champions' and email is not null
)

select * from final
