-- What the next best offer chooses from (docs/metrics.md, "Next best offer"): one row per customer and product
-- type they do not hold, with what is known about the customer at the end of as_of (macro customer_features_at,
-- as the uplift model learnt it), and a channel the offer would go on with the campaign medium that prices it:
-- the customer's contact channel (int_customer_contact_channel: consented, the channel they already use with
-- us, the cheapest), and the service desk for the customers it may hear from next (int_service_desk_customers).
-- A customer on neither has no candidates.
with

customers as (
    select * from {{ ref('dim_customers') }}
),

customer_channels as (
    select * from {{ ref('int_customer_contact_channel') }}
),

observation_window as (
    select * from {{ ref('observation_window') }}
),

contact_channels as (
    select * from {{ ref('contact_channels') }}
),

-- The channels each customer can get an offer on.
offer_channels as (
    select
        customer_id,
        best_contact_channel as channel
    from customer_channels
    where best_contact_channel is not null
    union all
    select
        customer_id,
        'service_desk' as channel
    from {{ ref('int_service_desk_customers') }}
),

product_types as (
    select distinct consequent_product_type as product_type
    from {{ ref('product_affinity') }}
    where level = 'customer'
),

moments as (
    select
        customers.customer_id as moment_id,
        customers.customer_id,
        (observation_window.as_of + interval 1 day)::timestamp as moment
    from customers
    cross join observation_window
    where customers.customer_id in (select offer_channels.customer_id from offer_channels)
),

features as (
    {{ customer_features_at('moments') }}
),

-- Materialized, so the affinity join below takes both its keys from it (see int_offer_training).
candidates as materialized (
    select
        features.*,
        product_types.product_type as offer_product_type
    from features
    inner join product_types on not list_contains(features.product_types_held, product_types.product_type)
),

holdings as (
    select distinct
        product_types_held,
        offer_product_type
    from candidates
),

affinity as (
    {{ affinity_of_holdings('holdings') }}
),

candidate_rows as (
    select
        candidates.moment_id as customer_id,
        candidates.offer_product_type,
        offer_channels.channel,
        contact_channels.campaign_medium as media,
        {% for feature in offer_customer_features() -%}
            candidates.{{ feature }},
        {% endfor -%}
        least(len(candidates.product_types_held), 5) as product_types_held_bin,
        0 as holds_offer_type,
        affinity.affinity_bin,
        affinity.affinity_antecedent,
        affinity.affinity_lift
    from candidates
    inner join offer_channels on candidates.moment_id = offer_channels.customer_id
    inner join contact_channels on offer_channels.channel = contact_channels.channel
    inner join affinity
        on
            candidates.product_types_held = affinity.product_types_held
            and candidates.offer_product_type = affinity.offer_product_type
),

final as (
    select
        *,
        {{ offer_profile_key('candidate_rows') }} as offer_profile_key
    from candidate_rows
)

select * from final
