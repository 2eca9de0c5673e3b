-- One row per campaign and customer drawn for it (contacted or control), with what the customer bought in
-- the attribution window: the var('attribution_days') days after the contact (docs/metrics.md, "Campaigns"), and
-- its RFM measures at contact time (purchases before the contact).
-- A customer whose records were drawn into both groups of one campaign (two records later found to be one
-- person) counts as contacted: they were contacted.
with

campaign_contacts as (
    select * from {{ ref('fct_campaign_contacts') }}
),

purchases as (
    select * from {{ ref('fct_purchases') }}
),

observation_window as (
    select * from {{ ref('observation_window') }}
),

members as (
    select
        campaign_contacts.source_system,
        campaign_contacts.campaign_id,
        campaign_contacts.customer_id,
        any_value(campaign_contacts.media) as media,
        any_value(campaign_contacts.product_type) as product_type,
        bool_and(campaign_contacts.is_control) as is_control,
        coalesce(
            min(campaign_contacts.contacted_at) filter (where not campaign_contacts.is_control),
            min(campaign_contacts.contacted_at)
        ) as contacted_at,
        bool_or(campaign_contacts.is_control) and bool_or(not campaign_contacts.is_control) as drawn_in_both_groups,
        coalesce(bool_or(campaign_contacts.response = 'accepted' and not campaign_contacts.is_control), false)
            as responded
    from campaign_contacts
    cross join observation_window
    where campaign_contacts.contacted_at::date <= observation_window.as_of
    group by all
),

{%- set in_window = 'purchases.purchased_at > members.contacted_at and not purchases.is_return' %}
-- The customer's purchases around the contact, read once: before it (RFM at contact time) and in its window.
purchases_around as (
    select
        members.source_system,
        members.campaign_id,
        members.customer_id,
        max(purchases.purchase_date) filter (where purchases.purchased_at < members.contacted_at and not purchases.is_return)
            as last_purchase_date_before,
        count(*) filter (where purchases.purchased_at < members.contacted_at and not purchases.is_return)
            as frequency_before,
        sum(purchases.amount) filter (where purchases.purchased_at < members.contacted_at) as monetary_before,
        count(*) filter (where {{ in_window }}) as purchases,
        sum(purchases.amount) filter (where {{ in_window }}) as revenue,
        count(*) filter (where {{ in_window }} and purchases.product_type = members.product_type)
            as product_type_purchases,
        sum(purchases.amount - {{ cost_of_goods('purchases.amount', 'purchases.cost') }}) filter (where {{ in_window }})
            as gross_profit
    from members
    cross join observation_window
    inner join purchases
        on
            members.customer_id = purchases.customer_id
            and purchases.purchased_at <= members.contacted_at + interval {{ var('attribution_days') }} day
            and purchases.purchase_date <= observation_window.as_of
    group by all
),

final as (
    select
        members.source_system,
        members.campaign_id,
        members.customer_id,
        members.media,
        members.product_type,
        members.is_control,
        members.contacted_at,
        members.drawn_in_both_groups,
        members.responded,
        coalesce(purchases_around.purchases, 0) > 0 as converted,
        coalesce(purchases_around.product_type_purchases, 0) > 0 as converted_product_type,
        coalesce(purchases_around.purchases, 0) as purchases,
        coalesce(purchases_around.revenue, 0)::decimal(18, 4) as revenue,
        coalesce(purchases_around.gross_profit, 0)::decimal(18, 4) as gross_profit,
        {{ days_between('purchases_around.last_purchase_date_before', 'members.contacted_at::date') }} as recency_days_at_contact,
        coalesce(purchases_around.frequency_before, 0) as frequency_at_contact,
        coalesce(purchases_around.monetary_before, 0)::decimal(18, 4) as monetary_at_contact,
        members.contacted_at + interval {{ var('attribution_days') }} day <= observation_window.as_of + interval 1 day
            as attribution_complete
    from members
    cross join observation_window
    left join purchases_around
        on
            members.source_system = purchases_around.source_system
            and members.campaign_id = purchases_around.campaign_id
            and members.customer_id = purchases_around.customer_id
)

select * from final
