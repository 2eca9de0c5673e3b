-- Where the catalogue says a product type has a step up: every pair of types of one product family (the
-- catalogue's `family`) where the second's average list price is higher. An up-sell offers the second to a
-- customer who buys the first.
with

products as (
    select * from {{ ref('stg_raw__products') }}
),

type_prices as (
    select
        product_family,
        product_type,
        avg(list_price) as average_list_price
    from products
    where product_family is not null and product_type is not null and list_price > 0
    group by all
),

final as (
    select
        cheaper.product_family,
        cheaper.product_type as from_product_type,
        pricier.product_type as to_product_type,
        cheaper.average_list_price as from_average_list_price,
        pricier.average_list_price as to_average_list_price
    from type_prices as cheaper
    inner join type_prices as pricier
        on
            cheaper.product_family = pricier.product_family
            and pricier.average_list_price > cheaper.average_list_price
)

select * from final
