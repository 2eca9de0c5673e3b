-- Up-sell by e-mail: customers eligible for an offer this period (customer_next_best_offer, not held out) whose
-- e-mail offers include a pricier type of a family they already buy from (int_product_type_upgrades): the best
-- such type by expected incremental profit, with a reason that names the step up.
with

next_best_offers as (
    select * from {{ ref('customer_next_best_offer') }}
),

customers as (
    select * from {{ ref('customer_360') }}
),

ranking as (
    select * from {{ ref('int_offer_ranking') }}
),

upgrades as (
    select * from {{ ref('int_product_type_upgrades') }}
),

up_sells as (
    select
        ranking.*,
        upgrades.from_product_type,
        next_best_offers.valid_from,
        row_number() over (
            partition by ranking.customer_id
            order by ranking.expected_incremental_profit desc, upgrades.from_average_list_price desc, ranking.offer_product_type
        ) as up_sell_rank
    from ranking
    inner join next_best_offers on ranking.customer_id = next_best_offers.customer_id
    inner join customers on ranking.customer_id = customers.customer_id
    inner join upgrades
        on
            ranking.offer_product_type = upgrades.to_product_type
            and list_contains(customers.product_types_held, upgrades.from_product_type)
    where
        ranking.channel = 'email'
        and next_best_offers.is_eligible
        and not next_best_offers.is_holdout
        and customers.email is not null
),

final as (
    select
        up_sells.customer_id,
        customers.full_name,
        customers.email,
        up_sells.from_product_type as holds_product_type,
        up_sells.offer_product_type,
        'a step up from ' || up_sells.from_product_type || '; ' || {{ offer_reason() }} as reason,
        up_sells.expected_incremental_profit::decimal(18, 4) as expected_incremental_profit,
        up_sells.expected_incremental_profit + up_sells.cost_per_contact as expected_contact_value,
        up_sells.cost_per_contact as contact_cost,
        up_sells.expected_incremental_profit > 0 as contact_pays,
        up_sells.model_version,
        up_sells.valid_from
    from up_sells
    inner join customers on up_sells.customer_id = customers.customer_id
    where up_sells.up_sell_rank = 1
)

select * from final
