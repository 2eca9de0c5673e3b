-- One row per household (customers sharing a postal address, int_household_members): its members, the product
-- types they hold and what they spend (docs/metrics.md, "Households").
with

members as (
    select * from {{ ref('int_household_members') }}
),

purchases as (
    select * from {{ ref('fct_purchases') }}
),

observation_window as (
    select * from {{ ref('observation_window') }}
),

household_purchases as (
    select
        members.household_id,
        purchases.*
    from members
    cross join observation_window
    inner join purchases on members.customer_id = purchases.customer_id
    where purchases.purchase_date <= observation_window.as_of
),

spend as (
    select
        household_purchases.household_id,
        count(*) filter (where not household_purchases.is_return) as orders,
        sum(household_purchases.amount)::decimal(18, 4) as lifetime_revenue,
        coalesce(sum(household_purchases.amount) filter (
            where household_purchases.purchase_date > observation_window.as_of - interval 12 months
        ), 0)::decimal(18, 4) as revenue_12_months,
        {{ sorted_list(
            'household_purchases.product_type',
            distinct=true,
            condition='not household_purchases.is_return and household_purchases.product_type is not null',
        ) }} as product_types_held,
        max(household_purchases.purchased_at) filter (where not household_purchases.is_return) as last_purchase_at
    from household_purchases
    cross join observation_window
    group by household_purchases.household_id
),

households as (
    select
        household_id,
        count(*) as members,
        {{ sorted_list('customer_id') }} as member_customer_ids,
        nullif(concat_ws(
            ', ',
            case when bool_or(contains(linked_by, 'address')) then 'address' end,
            case when bool_or(contains(linked_by, 'postal_code_and_phone')) then 'postal_code_and_phone' end
        ), '') as linked_by
    from members
    group by household_id
),

final as (
    select
        households.household_id,
        households.members,
        households.member_customer_ids,
        households.linked_by,
        coalesce(spend.orders, 0) as orders,
        coalesce(spend.lifetime_revenue, 0) as lifetime_revenue,
        coalesce(spend.revenue_12_months, 0) as revenue_12_months,
        coalesce(spend.product_types_held, {{ list_of([]) }}) as product_types_held,
        {{ list_size('coalesce(spend.product_types_held, ' ~ list_of([]) ~ ')') }} as product_types_held_count,
        spend.last_purchase_at,
        observation_window.as_of
    from households
    cross join observation_window
    left join spend on households.household_id = spend.household_id
)

select * from final
