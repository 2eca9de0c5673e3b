-- Who an offer can go to, and on what (docs/metrics.md, "Next best offer"): one row per customer and channel
-- an offer would go on, with the campaign medium that prices it - the customer's contact channel
-- (int_customer_contact_channel: consented, the channel they already use with us, the cheapest), and the
-- service desk for the customers it may hear from next (int_service_desk_customers), each unless a rule bars
-- the customer there (int_offer_eligibility) - and what is known about
-- the customer at the end of as_of (macro customer_features_at, as the uplift model learnt it). The product
-- types they could be offered are those of their holdings (int_offer_holdings, by holdings_id); a customer on
-- neither channel has no row.
with

customers as (
    select * from {{ ref('dim_customers') }}
),

observation_window as (
    select * from {{ ref('observation_window') }}
),

contact_channels as (
    select * from {{ ref('contact_channels') }}
),

eligibility as (
    select * from {{ ref('int_offer_eligibility') }}
),

-- The channels each customer can get an offer on, if no rule bars them there (int_offer_eligibility): their
-- contact channel when no rule does, the service desk without an open complaint and when not held out.
offer_channels as (
    select
        customer_id,
        best_contact_channel as channel
    from eligibility
    where barred_by is null
    union all
    select
        desk.customer_id,
        'service_desk' as channel
    from {{ ref('int_service_desk_customers') }} as desk
    inner join eligibility on desk.customer_id = eligibility.customer_id
    where eligibility.open_complaints = 0 and not eligibility.is_holdout
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

customer_features as (
    select
        *,
        least({{ list_size('product_types_held') }}, 5) as product_types_held_bin,
        -- The customer's set of product types, numbered (int_offer_holdings: what each set may be offered).
        dense_rank() over (order by product_types_held) as holdings_id
    from features
),

final as (
    select
        offer_channels.customer_id,
        offer_channels.channel,
        contact_channels.campaign_medium as media,
        {% for feature in offer_customer_features() -%}
            customer_features.{{ feature }},
        {% endfor -%}
        customer_features.product_types_held_bin,
        {{ offer_profile_key('customer_features') }} as offer_profile_key,
        customer_features.holdings_id,
        customer_features.product_types_held
    from offer_channels
    inner join customer_features on offer_channels.customer_id = customer_features.moment_id
    inner join contact_channels on offer_channels.channel = contact_channels.channel
)

select * from final
