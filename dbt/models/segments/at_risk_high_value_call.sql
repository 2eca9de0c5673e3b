-- Valuable customers slipping away (At Risk, Can't Lose Them: they bought often and much, but not lately)
-- who still make a profit, with a phone: a retention call by an experienced agent, before they are lost.
with

customers as (
    select * from {{ ref('customer_360') }}
),

contact_uplift as (
    {{ contact_uplift_of('phone') }}
),

final as (
    select
        customer_id,
        full_name,
        phone,
        rfm_segment,
        value_tier,
        clv,
        p_alive,
        last_purchase_at,
        {{ contact_pays_columns('clv') }}
    from customers
    cross join contact_uplift
    where
        rfm_segment in ('At Risk', {{ text_literal("Can't Lose Them") }})
        and value_tier != 'below_zero'
        and phone is not null
)

select * from final
