-- Up-sell by e-mail: customers eligible for an offer this period (customer_next_best_offer, not held out) whose
-- e-mail offers include a pricier type of a family they already buy from (int_offer_terms, from
-- int_product_type_upgrades): the best such type by expected incremental profit, with a reason that names the
-- step up.
with

next_best_offers as (
    select * from {{ ref('customer_next_best_offer') }}
),

customers as (
    select * from {{ ref('customer_360') }}
),

up_sell_offers as (
    {{ priced_offers(ref('int_offer_candidates'), "candidates.channel = 'email' and terms.up_sell_from_product_type is not null") }}
),

best_up_sell_rows as (
    select *
    from up_sell_offers
    qualify row_number() over (
        partition by customer_id
        order by expected_incremental_profit desc, product_type_order asc
    ) = 1
),

up_sells as (
    select
        best_up_sell_rows.*,
        next_best_offers.valid_from
    from best_up_sell_rows
    inner join next_best_offers on best_up_sell_rows.customer_id = next_best_offers.customer_id
    where next_best_offers.is_eligible and not next_best_offers.is_holdout
),

final as (
    select
        up_sells.customer_id,
        customers.full_name,
        customers.email,
        up_sells.up_sell_from_product_type as holds_product_type,
        up_sells.offer_product_type,
        'a step up from ' || up_sells.up_sell_from_product_type || '; ' || {{ offer_reason() }} as reason,
        up_sells.expected_incremental_profit::decimal(18, 4) as expected_incremental_profit,
        up_sells.expected_incremental_profit + up_sells.cost_per_contact as expected_contact_value,
        up_sells.cost_per_contact as contact_cost,
        up_sells.expected_incremental_profit > 0 as contact_pays,
        up_sells.model_version,
        up_sells.valid_from
    from up_sells
    inner join customers on up_sells.customer_id = customers.customer_id
    where customers.email is not null
)

select * from final
