-- What each offer would bring whoever gets it (docs/metrics.md, "Next best offer"): one row per set of product
-- types customers hold (holdings_id of int_offer_candidates), product type not in the set, and channel - the
-- affinity that points at the type from the set (macro affinity_of_holdings), the uplift of a contact
-- estimated from it (what ranks the offers when the uplift model does not), what a purchase of the type earns,
-- the contact's cost, and the held type it is a step up from, if any (int_product_type_upgrades: the priciest).
with

candidates as (
    select * from {{ ref('int_offer_candidates') }}
),

upgrades as (
    select * from {{ ref('int_product_type_upgrades') }}
),

contact_uplift as (
    select * from {{ ref('int_contact_uplift') }}
),

purchases as (
    select * from {{ ref('fct_purchases') }}
),

observation_window as (
    select * from {{ ref('observation_window') }}
),

product_types as (
    select
        consequent_product_type as product_type,
        any_value(consequent_holders / base_holders) as holder_share
    from {{ ref('product_affinity') }}
    where level = 'customer'
    group by consequent_product_type
),

-- Gross profit of an average purchase of the type (sales to as_of, known cost or the default margin).
margins as (
    select
        purchases.product_type,
        avg(purchases.amount - {{ cost_of_goods('purchases.amount', 'purchases.cost') }}) as margin_per_purchase
    from purchases
    cross join observation_window
    where not purchases.is_return and purchases.purchase_date <= observation_window.as_of
    group by purchases.product_type
),

holdings_sets as (
    select distinct
        holdings_id,
        product_types_held
    from candidates
),

holdings as (
    select
        holdings_sets.holdings_id,
        holdings_sets.product_types_held,
        product_types.product_type as offer_product_type
    from holdings_sets
    inner join product_types on not array_contains(holdings_sets.product_types_held, product_types.product_type)
),

affinity as (
    {{ affinity_of_holdings('holdings') }}
),

up_sells as (
    select
        holdings.holdings_id,
        holdings.offer_product_type,
        max_by(upgrades.from_product_type, upgrades.from_average_list_price) as up_sell_from_product_type
    from holdings
    inner join upgrades
        on
            holdings.offer_product_type = upgrades.to_product_type
            and array_contains(holdings.product_types_held, upgrades.from_product_type)
    group by all
),

final as (
    select
        holdings.holdings_id,
        holdings.offer_product_type,
        contact_uplift.channel,
        affinity.affinity_bin,
        affinity.affinity_antecedent,
        affinity.affinity_lift,
        product_types.holder_share,
        coalesce(contact_uplift.contact_uplift, 0) * least(coalesce(affinity.affinity_lift, 1), 4)
        * product_types.holder_share as affinity_uplift,
        margins.margin_per_purchase::double as margin_per_purchase,
        contact_uplift.cost_per_contact,
        up_sells.up_sell_from_product_type,
        -- The type's place in alphabetical order: the tie-break between offers of equal profit.
        dense_rank() over (order by holdings.offer_product_type) as product_type_order
    from holdings
    inner join affinity
        on
            holdings.product_types_held = affinity.product_types_held
            and holdings.offer_product_type = affinity.offer_product_type
    inner join product_types on holdings.offer_product_type = product_types.product_type
    inner join margins on holdings.offer_product_type = margins.product_type
    cross join contact_uplift
    left join up_sells
        on
            holdings.holdings_id = up_sells.holdings_id
            and holdings.offer_product_type = up_sells.offer_product_type
)

select * from final
