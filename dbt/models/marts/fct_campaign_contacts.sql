{{
    config(
        materialized='incremental',
        unique_key=['source_system', 'campaign_id', 'source_customer_id', 'contacted_at'],
        incremental_strategy='delete+insert',
        on_schema_change='fail',
    )
}}
-- depends_on: {{ ref('int_identity_clusters') }}  (read by the incremental build)
-- Incremental: the contacts loaded since the last build, those of customers whose records were re-clustered, and
-- those of campaigns loaded since.
with

campaigns as (
    select * from {{ ref('stg_raw__campaigns') }}
),

campaign_contacts as (
    select campaign_contacts.*
    from {{ ref('stg_raw__campaign_contacts') }} as campaign_contacts
    {{ facts_to_rebuild('campaign_contacts', reference='campaigns', reference_keys=['source_system', 'campaign_id']) }}
),

id_map as (
    select * from {{ ref('customer_id_map') }}
),

final as (
    select
        campaign_contacts.source_system,
        campaign_contacts.campaign_id,
        campaign_contacts.source_customer_id,
        id_map.customer_id,
        campaign_contacts.contacted_at,
        campaigns.campaign_name,
        campaigns.media,
        campaigns.objective,
        campaigns.product_type,
        campaigns.cost_per_contact,
        campaign_contacts.is_control,
        campaign_contacts.responded_at,
        campaign_contacts.response,
        campaign_contacts.order_id,
        campaigns.campaign_id is not null as campaign_found,
        id_map.has_customer_record as customer_record_found,
        greatest(campaign_contacts.loaded_at, campaigns.loaded_at) as loaded_at,
        {{ build_started_at() }} as built_at
    from campaign_contacts
    inner join id_map
        on
            campaign_contacts.source_system = id_map.source_system
            and campaign_contacts.source_customer_id = id_map.source_customer_id
    left join campaigns
        on
            campaign_contacts.source_system = campaigns.source_system
            and campaign_contacts.campaign_id = campaigns.campaign_id
)

select * from final
