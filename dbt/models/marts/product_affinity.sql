-- Product affinity (docs/metrics.md, "Product affinity"): for every ordered pair of product types A -> B, how
-- much more often the holders of A hold B than the base does, counted over customers and over households.
-- A customer (household) holds a type when one of their purchases (not a return) to as_of is of it.
with

purchases as (
    select * from {{ ref('fct_purchases') }}
),

household_members as (
    select * from {{ ref('int_household_members') }}
),

observation_window as (
    select * from {{ ref('observation_window') }}
),

customer_holdings as (
    select distinct
        purchases.customer_id,
        purchases.product_type
    from purchases
    cross join observation_window
    where
        not purchases.is_return
        and purchases.product_type is not null
        and purchases.purchase_date <= observation_window.as_of
),

holdings as (
    select
        'customer' as level,
        customer_id as holder_id,
        product_type
    from customer_holdings
    union all
    select distinct
        'household' as level,
        coalesce(household_members.household_id, customer_holdings.customer_id) as holder_id,
        customer_holdings.product_type
    from customer_holdings
    left join household_members on customer_holdings.customer_id = household_members.customer_id
),

-- Each holder's set of types, and how many holders hold each distinct set: the pairs are counted over the
-- sets (a few thousand), not over every holder's pairs.
holder_sets as (
    select
        level,
        {{ sorted_list('product_type') }} as product_types
    from holdings
    group by level, holder_id
),

set_counts as (
    select
        level,
        product_types,
        count(*) as holders,
        row_number() over (order by level, product_types) as set_id
    from holder_sets
    group by level, product_types
),

set_members as (
    select
        level,
        set_id,
        holders,
        {{ unnested('product_types') }} as product_type
    from set_counts
),

base as (
    select
        level,
        sum(holders)::bigint as base_holders
    from set_counts
    group by level
),

type_holders as (
    select
        level,
        product_type,
        sum(holders)::bigint as holders
    from set_members
    group by level, product_type
),

pairs as (
    select
        antecedent.level,
        antecedent.product_type as antecedent_product_type,
        consequent.product_type as consequent_product_type,
        sum(antecedent.holders)::bigint as holders_of_both
    from set_members as antecedent
    inner join set_members as consequent
        on
            antecedent.set_id = consequent.set_id
            and antecedent.product_type != consequent.product_type
    group by all
),

all_pairs as (
    select
        antecedent.level,
        antecedent.product_type as antecedent_product_type,
        consequent.product_type as consequent_product_type,
        antecedent.holders as antecedent_holders,
        consequent.holders as consequent_holders
    from type_holders as antecedent
    inner join type_holders as consequent
        on
            antecedent.level = consequent.level
            and antecedent.product_type != consequent.product_type
),

final as (
    select
        all_pairs.level,
        all_pairs.antecedent_product_type,
        all_pairs.consequent_product_type,
        base.base_holders,
        all_pairs.antecedent_holders,
        all_pairs.consequent_holders,
        coalesce(pairs.holders_of_both, 0) as holders_of_both,
        coalesce(pairs.holders_of_both, 0) / base.base_holders as support,
        coalesce(pairs.holders_of_both, 0) / all_pairs.antecedent_holders as confidence,
        (coalesce(pairs.holders_of_both, 0) / all_pairs.antecedent_holders)
        / (all_pairs.consequent_holders / base.base_holders) as lift,
        observation_window.as_of
    from all_pairs
    inner join base on all_pairs.level = base.level
    cross join observation_window
    left join pairs
        on
            all_pairs.level = pairs.level
            and all_pairs.antecedent_product_type = pairs.antecedent_product_type
            and all_pairs.consequent_product_type = pairs.consequent_product_type
)

select * from final
