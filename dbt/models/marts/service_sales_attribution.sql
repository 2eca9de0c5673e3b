-- One row per service channel, handler, interaction type and month of the contact: what the service center's
-- contacts lead to (docs/metrics.md, "Service sales attribution"). Per contact: the customer's purchases in
-- the var('service_attribution_days') days after it, against the same customer's purchases in the same number
-- of days before it, and the product types the customer bought in the window that they did not hold before.
-- A purchase counts for every contact whose window holds it.
{%- set days = var('service_attribution_days') %}
with

service_interactions as (
    select * from {{ ref('fct_service_interactions') }}
),

purchases as (
    select * from {{ ref('fct_purchases') }}
    where not is_return
),

first_of_type as (
    -- When the customer first bought each product type (a grouped minimum: a window over every purchase
    -- costs more).
    select
        customer_id,
        product_type,
        min(purchased_at) as first_of_type_at
    from purchases
    group by all
),

observation_window as (
    select * from {{ ref('observation_window') }}
),

contacts as (
    select service_interactions.*
    from service_interactions
    cross join observation_window
    where service_interactions.occurred_at::date <= observation_window.as_of
),

around_contact as (
    select
        contacts.source_system,
        contacts.protocol,
        count(*) filter (where purchases.purchased_at > contacts.occurred_at) as purchases_after,
        sum(purchases.amount) filter (where purchases.purchased_at > contacts.occurred_at) as revenue_after,
        count(*) filter (
            where
                purchases.purchased_at < contacts.occurred_at
                and purchases.purchased_at >= contacts.occurred_at - interval {{ days }} day
        ) as purchases_before,
        sum(purchases.amount) filter (
            where
                purchases.purchased_at < contacts.occurred_at
                and purchases.purchased_at >= contacts.occurred_at - interval {{ days }} day
        ) as revenue_before,
        count(distinct purchases.product_type) filter (
            where purchases.purchased_at > contacts.occurred_at and first_of_type.first_of_type_at > contacts.occurred_at
        ) as new_product_types
    from contacts
    cross join observation_window
    inner join purchases
        on
            contacts.customer_id = purchases.customer_id
            and purchases.purchased_at >= contacts.occurred_at - interval {{ days }} day
            and purchases.purchased_at <= contacts.occurred_at + interval {{ days }} day
            and purchases.purchase_date <= observation_window.as_of
    left join first_of_type
        on
            purchases.customer_id = first_of_type.customer_id
            and purchases.product_type is not distinct from first_of_type.product_type
    group by all
),

final as (
    select
        contacts.channel,
        contacts.handled_by,
        contacts.interaction_type,
        date_trunc('month', contacts.occurred_at)::date as month,
        count(*) as contacts,
        count(distinct contacts.customer_id) as customers,
        coalesce(sum(around_contact.purchases_after), 0)::bigint as purchases_after,
        coalesce(sum(around_contact.revenue_after), 0)::decimal(18, 2) as revenue_after,
        coalesce(sum(around_contact.purchases_before), 0)::bigint as purchases_before,
        coalesce(sum(around_contact.revenue_before), 0)::decimal(18, 2) as revenue_before,
        coalesce(sum(around_contact.purchases_after), 0) / count(*) as purchases_per_contact_after,
        coalesce(sum(around_contact.purchases_before), 0) / count(*) as purchases_per_contact_before,
        count(*) filter (where around_contact.purchases_after > 0) / count(*) as buying_share_after,
        count(*) filter (where around_contact.purchases_before > 0) / count(*) as buying_share_before,
        (coalesce(sum(around_contact.revenue_after), 0) - coalesce(sum(around_contact.revenue_before), 0))::decimal(18, 2)
            as revenue_change,
        coalesce(avg(coalesce(around_contact.new_product_types, 0)), 0) as new_product_types_per_contact,
        bool_and(contacts.occurred_at + interval {{ days }} day <= observation_window.as_of + interval 1 day)
            as attribution_complete,
        {{ days }} as attribution_days,
        any_value(observation_window.as_of) as as_of
    from contacts
    cross join observation_window
    left join around_contact
        on
            contacts.source_system = around_contact.source_system
            and contacts.protocol = around_contact.protocol
    group by contacts.channel, contacts.handled_by, contacts.interaction_type, month
)

select * from final
