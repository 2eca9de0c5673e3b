-- Most growable customers (predicted CLV well above what they bring today) with an e-mail: a cross-sell
-- offer on the product types they do not hold yet.
with

customers as (
    select * from {{ ref('customer_360') }}
),

final as (
    select
        customer_id,
        full_name,
        email,
        array_to_string(product_types_held, ', ') as product_types_held,
        clv,
        profit_12_months
    from customers
    where value_tier = 'most_growable' and email is not null
)

select * from final
