{%- set service_channels = var('service_channels') -%}
{%- set interaction_types = var('interaction_types') -%}
{%- set consent_channels = var('consent_channels') -%}
with

customers as (
    select * from {{ ref('dim_customers') }}
),

-- Read through purchases_to_date, itself read three times: inlined, not copied.
purchases as {{ inlined() }} (
    select * from {{ ref('fct_purchases') }}
),

-- Read twice: inlined, not copied (DuckDB 1.4 copies a CTE read twice, every column of it, into memory).
service_interactions as {{ inlined() }} (
    select * from {{ ref('fct_service_interactions') }}
),

consents as (
    select * from {{ ref('customer_consents') }}
),

contact_channels as (
    select * from {{ ref('int_customer_contact_channel') }}
),

observation_window as (
    select * from {{ ref('observation_window') }}
),

customer_rfmt as (
    select * from {{ ref('customer_rfmt') }}
),

customer_value as (
    select * from {{ ref('customer_value') }}
),

customer_clv as (
    select * from {{ source('clv', 'customer_clv') }}
),

service_tiers as (
    select * from {{ ref('service_tiers') }}
),

campaign_members as (
    select * from {{ ref('int_campaign_members') }}
),

household_members as (
    select * from {{ ref('int_household_members') }}
),

campaigns as (
    select * from {{ ref('dim_campaigns') }}
),

campaign_summary as (
    -- The campaigns that contacted the customer (control-group draws are not contacts).
    select
        campaign_members.customer_id,
        count(*) filter (
            where campaign_members.contacted_at::date > observation_window.as_of - interval 12 months
        ) as campaigns_contacted_12_months,
        count(*) filter (
            where
                campaign_members.responded
                and campaign_members.contacted_at::date > observation_window.as_of - interval 12 months
        ) as campaigns_responded_12_months,
        max_by(
            {{ struct_of([('source_system', 'campaign_members.source_system'), ('campaign_id', 'campaign_members.campaign_id')]) }},
            campaign_members.contacted_at
        ) as last_campaign,
        max(campaign_members.contacted_at) as last_campaign_contacted_at
    from campaign_members
    cross join observation_window
    where not campaign_members.is_control
    group by campaign_members.customer_id
),

service_counts as (
    select
        customer_id,
        count(*) as service_contacts,
        max(occurred_at) as last_service_contact_at,
        {% for channel in service_channels -%}
            count(*) filter (where channel = '{{ channel }}') as contacts_{{ channel }},
            max(occurred_at) filter (where channel = '{{ channel }}') as last_contact_{{ channel }}_at,
        {% endfor -%}
        {% for type in interaction_types -%}
            count(*) filter (where interaction_type = '{{ type }}') as {{ type }}_contacts,
            max(occurred_at) filter (where interaction_type = '{{ type }}') as last_{{ type }}_at,
        {% endfor -%}
        count(*) filter (where {{ is_open_complaint('service_interactions') }}) as open_complaints,
        avg(case when handled_by = 'agent' then 1.0 when handled_by in ('self_service', 'bot') then 0.0 end)
            as human_handled_share
    from service_interactions
    group by customer_id
),

preferred_service_channels as (
    {{ most_used('service_interactions', 'channel', 'occurred_at', 'preferred_service_channel') }}
),

service_summary as (
    select
        service_counts.*,
        preferred_service_channels.preferred_service_channel
    from service_counts
    left join preferred_service_channels on service_counts.customer_id = preferred_service_channels.customer_id
),

-- Read three times: inlined, not copied (DuckDB 1.4 copies a CTE read more than once, every column of it, into memory).
purchases_to_date as {{ inlined() }} (
    select purchases.*
    from purchases
    cross join observation_window
    where purchases.purchase_date <= observation_window.as_of
),

purchase_counts as (
    select
        purchases_to_date.customer_id,
        count(*) filter (where not purchases_to_date.is_return) as orders,
        count(*) filter (where purchases_to_date.is_return) as returned_orders,
        sum(purchases_to_date.amount)::decimal(18, 4) as lifetime_spend,
        coalesce(sum(purchases_to_date.amount) filter (
            where purchases_to_date.purchase_date
                > observation_window.as_of - interval {{ var('value_window_months') }} months
        ), 0)::decimal(18, 4) as spend_in_value_window,
        min(purchases_to_date.purchased_at) filter (where not purchases_to_date.is_return) as first_purchase_at,
        max(purchases_to_date.purchased_at) filter (where not purchases_to_date.is_return) as last_purchase_at
    from purchases_to_date
    cross join observation_window
    group by purchases_to_date.customer_id
),

-- Listed from the distinct pairs: a list of every order's type per customer, deduplicated after, holds
-- millions of values in memory.
product_types_held as (
    select
        customer_id,
        {{ sorted_list('product_type') }} as product_types_held
    from (
        select distinct
            customer_id,
            product_type
        from purchases_to_date
        where not is_return and product_type is not null
    ) as held
    group by customer_id
),

preferred_store_types as (
    {{ most_used('purchases_to_date', 'store_type', 'purchased_at', 'preferred_store_type', 'not is_return') }}
),

purchase_summary as (
    select
        purchase_counts.*,
        product_types_held.product_types_held,
        preferred_store_types.preferred_store_type
    from purchase_counts
    left join product_types_held on purchase_counts.customer_id = product_types_held.customer_id
    left join preferred_store_types on purchase_counts.customer_id = preferred_store_types.customer_id
),

consent_summary as (
    select
        customer_id,
        {% for channel in consent_channels -%}
            any_value(status) filter (where channel = '{{ channel }}') as consent_{{ channel }},
        {% endfor -%}
        {{ sorted_list('channel', condition="status = 'opt_in'") }} as consented_channels
    from consents
    group by customer_id
),

final as (
    select
        customers.customer_id,
        customers.full_name,
        customers.email,
        customers.phone,
        customers.document_id,
        customers.birth_date,
        customers.city,
        customers.state,
        customers.first_seen_at,
        customers.source_systems,
        household_members.household_id,
        coalesce(service_summary.service_contacts, 0) as service_contacts,
        service_summary.last_service_contact_at,
        {% for channel in service_channels -%}
            coalesce(service_summary.contacts_{{ channel }}, 0) as contacts_{{ channel }},
            service_summary.last_contact_{{ channel }}_at,
        {% endfor -%}
        {% for type in interaction_types -%}
            coalesce(service_summary.{{ type }}_contacts, 0) as {{ type }}_contacts,
            service_summary.last_{{ type }}_at,
        {% endfor -%}
        coalesce(service_summary.open_complaints, 0) as open_complaints,
        service_summary.preferred_service_channel,
        {{ service_style('service_summary.human_handled_share') }} as service_style,
        coalesce(purchase_summary.orders, 0) as orders,
        coalesce(purchase_summary.returned_orders, 0) as returned_orders,
        coalesce(purchase_summary.lifetime_spend, 0) as lifetime_spend,
        coalesce(purchase_summary.spend_in_value_window, 0) as spend_in_value_window,
        purchase_summary.first_purchase_at,
        purchase_summary.last_purchase_at,
        coalesce(purchase_summary.product_types_held, {{ list_of([]) }}) as product_types_held,
        purchase_summary.preferred_store_type,
        {% for channel in consent_channels -%}
            consent_summary.consent_{{ channel }},
        {% endfor -%}
        contact_channels.best_contact_channel,
        customer_rfmt.r_score,
        customer_rfmt.f_score,
        customer_rfmt.m_score,
        customer_rfmt.t_score,
        customer_rfmt.rfm_segment,
        customer_value.profit as profit_in_value_window,
        customer_value.value_tier,
        customer_clv.p_alive,
        customer_clv.expected_purchases,
        customer_value.clv,
        customer_value.clv_status,
        customer_value.below_zero_reason,
        -- The texts: high-value callers go to experienced agents, and how much may be spent recovering a
        -- complaint depends on the customer's value (seed service_tiers).
        coalesce(campaign_summary.campaigns_contacted_12_months, 0) as campaigns_contacted_12_months,
        coalesce(campaign_summary.campaigns_responded_12_months, 0) as campaigns_responded_12_months,
        campaign_summary.last_campaign.campaign_id as last_campaign_id,
        campaigns.campaign_name as last_campaign_name,
        campaign_summary.last_campaign_contacted_at,
        service_tiers.service_tier,
        -- In decimals: a double rounded to cents rounds its ties differently on each engine.
        least(
            greatest(customer_value.revenue, 0) * service_tiers.recovery_share_of_revenue::decimal(9, 6),
            service_tiers.recovery_cap::decimal(18, 2)
        )::decimal(18, 2) as complaint_recovery_allowance,
        observation_window.as_of
    from customers
    cross join observation_window
    left join service_summary on customers.customer_id = service_summary.customer_id
    left join purchase_summary on customers.customer_id = purchase_summary.customer_id
    left join consent_summary on customers.customer_id = consent_summary.customer_id
    left join contact_channels on customers.customer_id = contact_channels.customer_id
    left join customer_rfmt on customers.customer_id = customer_rfmt.customer_id
    left join customer_value on customers.customer_id = customer_value.customer_id
    left join customer_clv on customers.customer_id = customer_clv.customer_id
    left join service_tiers on customer_value.value_tier = service_tiers.value_tier
    left join campaign_summary on customers.customer_id = campaign_summary.customer_id
    left join household_members on customers.customer_id = household_members.customer_id
    left join campaigns
        on
            campaign_summary.last_campaign.source_system = campaigns.source_system
            and campaign_summary.last_campaign.campaign_id = campaigns.campaign_id
)

select * from final
