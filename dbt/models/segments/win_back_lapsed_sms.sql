-- Lapsed repeat buyers (About to Sleep, Hibernating, Lost; the model thinks them more likely gone than
-- not) with a phone: a win-back SMS with a comeback offer.
with

customers as (
    select * from {{ ref('customer_360') }}
),

contact_uplift as (
    {{ contact_uplift_of('sms') }}
),

final as (
    select
        customer_id,
        full_name,
        phone,
        rfm_segment,
        orders,
        last_purchase_at,
        p_alive,
        {{ contact_pays_columns('clv') }}
    from customers
    cross join contact_uplift
    where
        rfm_segment in ('About to Sleep', 'Hibernating', 'Lost')
        and orders >= 2
        and p_alive < 0.5
        and phone is not null
)

select * from final
