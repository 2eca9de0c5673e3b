{{
    config(
        materialized='incremental',
        unique_key=['source_system', 'protocol'],
        incremental_strategy='delete+insert',
        on_schema_change='fail',
    )
}}
-- depends_on: {{ ref('int_identity_clusters') }}  (read by the incremental build)
-- Incremental: the contacts loaded since the last build and those of customers whose records were re-clustered.
with

service_interactions as (
    select service_interactions.*
    from {{ ref('stg_raw__service_interactions') }} as service_interactions
    {{ facts_to_rebuild('service_interactions') }}
),

id_map as (
    select * from {{ ref('customer_id_map') }}
),

final as (
    select
        service_interactions.source_system,
        service_interactions.interaction_id as protocol,
        id_map.customer_id,
        service_interactions.occurred_at,
        service_interactions.channel,
        service_interactions.interaction_type,
        service_interactions.reason,
        service_interactions.handled_by,
        service_interactions.duration_seconds,
        coalesce(service_interactions.is_resolved, service_interactions.resolved_at is not null) as is_resolved,
        service_interactions.resolved_at,
        id_map.has_customer_record as customer_record_found,
        service_interactions.loaded_at,
        {{ build_started_at() }} as built_at
    from service_interactions
    inner join id_map
        on
            service_interactions.source_system = id_map.source_system
            and service_interactions.source_customer_id = id_map.source_customer_id
)

select * from final
