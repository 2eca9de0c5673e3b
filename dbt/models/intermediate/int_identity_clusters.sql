{{
    config(
        materialized='incremental',
        unique_key='record_key',
        incremental_strategy='delete+insert',
        post_hook="{{ connected_components_cleanup() }}",
    )
}}
-- depends_on: {{ ref('int_identity_keys') }}  (read by the incremental build)
-- One row per record: its cluster, the connected component of the identity graph (transitive closure:
-- records linked through any chain of shared keys are one person). The cluster is named by its smallest
-- record key. Incremental: the components are recomputed over the region of the records whose links may
-- have changed and every record of their previous clusters (a link that appeared or vanished has an end
-- there, so no new component reaches outside it); the region's records are stamped (changed_at).
{% set graph -%}
with

{% if is_incremental() -%}
    scope as (
        {{ records_with_changed_links() }}
    ),

    region as (
        select record_key from scope
        union
        select previous.record_key
        from {{ this }} as previous
        semi join (
            select previous_clusters.cluster_key
            from {{ this }} as previous_clusters
            semi join scope on previous_clusters.record_key = scope.record_key
        ) as touched on previous.cluster_key = touched.cluster_key
    ),

    -- Read twice: inlined, not copied (DuckDB 1.4 copies a CTE read twice, every column of it, into memory).
    records as {{ inlined() }} (
        select records.*
        from {{ ref('int_customer_records') }} as records
        semi join region on records.record_key = region.record_key
    ),
{%- else -%}
    records as {{ inlined() }} (
        select * from {{ ref('int_customer_records') }}
    ),
{%- endif %}

edges as (
    select edges.*
    from {{ ref('int_identity_edges') }} as edges
    {%- if is_incremental() %}
        semi join region on edges.record_key = region.record_key
    {%- endif %}
),

numbered_edges as (
    select
        records.record_number,
        linked_records.record_number as linked_record_number
    from edges
    inner join records on edges.record_key = records.record_key
    inner join records as linked_records on edges.linked_record_key = linked_records.record_key
)
{%- endset %}

{{ graph }},

components as (
    {{ connected_components(graph, 'records', 'record_number', 'numbered_edges', 'record_number', 'linked_record_number') }}
),

members as (
    select
        records.*,
        components.component as component_number,
        components.component_size as cluster_size
    from records
    inner join components on records.record_number = components.node
),

cluster_names as (
    -- By the smallest record key, not number: an incremental build numbers new records after the others.
    select
        component_number,
        min(record_key) as cluster_key
    from members
    group by component_number
),

final as (
    select
        members.record_key,
        members.source_system,
        members.source_customer_id,
        members.has_customer_record,
        members.first_seen_at,
        cluster_names.cluster_key,
        members.cluster_size,
        {{ build_started_at() }} as changed_at
    from members
    inner join cluster_names on members.component_number = cluster_names.component_number
)

select * from final
