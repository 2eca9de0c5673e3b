-- Every offer candidate priced (docs/metrics.md, "Next best offer"): the predicted uplift of contacting the
-- customer about the product type on their channel (marts.offer_uplift_scores when the uplift model ranks
-- this run, else the affinity estimate), what a purchase of the type earns, the contact's cost, and the
-- expected incremental profit; ranked per customer and channel (their contact channel, the service desk), best
-- first.
with

candidates as (
    select * from {{ ref('int_offer_candidates') }}
),

uplift_scores as (
    select * from {{ source('offers', 'offer_uplift_scores') }}
),

purchases as (
    select * from {{ ref('fct_purchases') }}
),

observation_window as (
    select * from {{ ref('observation_window') }}
),

contact_uplift as (
    select * from {{ ref('int_contact_uplift') }}
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

priced as (
    select
        candidates.customer_id,
        candidates.offer_product_type,
        candidates.channel,
        candidates.media,
        candidates.affinity_antecedent,
        candidates.affinity_lift,
        product_types.holder_share,
        uplift_scores.uplift is not null as from_uplift_model,
        coalesce(
            uplift_scores.uplift,
            coalesce(contact_uplift.contact_uplift, 0) * least(coalesce(candidates.affinity_lift, 1), 4) * product_types.holder_share
        ) as predicted_uplift,
        coalesce(uplift_scores.model_version, 'affinity') as model_version,
        margins.margin_per_purchase::double as margin_per_purchase,
        contact_uplift.cost_per_contact
    from candidates
    inner join contact_uplift on candidates.channel = contact_uplift.channel
    inner join margins on candidates.offer_product_type = margins.product_type
    inner join product_types on candidates.offer_product_type = product_types.product_type
    left join uplift_scores
        on
            candidates.offer_profile_key = uplift_scores.offer_profile_key
            and candidates.offer_product_type = uplift_scores.offer_product_type
            and candidates.media = uplift_scores.media
),

profits as (
    select
        *,
        predicted_uplift * margin_per_purchase - cost_per_contact as expected_incremental_profit
    from priced
),

final as (
    select
        *,
        row_number() over (
            partition by customer_id, channel order by expected_incremental_profit desc, offer_product_type
        ) as offer_rank
    from profits
)

select * from final
