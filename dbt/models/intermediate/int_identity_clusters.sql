-- One row per record: its cluster, the connected component of the identity graph (transitive closure:
-- records linked through any chain of shared keys are one person). The cluster is named by its smallest
-- record key.
with recursive

-- Read twice: inlined, not copied (DuckDB 1.4 copies a CTE read twice, every column of it, into memory).
records as not materialized (
    select * from {{ ref('int_customer_records') }}
),

edges as (
    select * from {{ ref('int_identity_edges') }}
),

numbered_edges as (
    select
        records.record_number,
        linked_records.record_number as linked_record_number
    from edges
    inner join records on edges.record_key = records.record_key
    inner join records as linked_records on edges.linked_record_key = linked_records.record_key
),

reachable (record_number, reachable_record_number) as (
    select
        record_number,
        record_number as reachable_record_number
    from records
    union
    select
        reachable.record_number,
        numbered_edges.linked_record_number
    from reachable
    inner join numbered_edges on reachable.reachable_record_number = numbered_edges.record_number
),

components as (
    select
        record_number,
        min(reachable_record_number) as component_number,
        count(*) as cluster_size
    from reachable
    group by record_number
),

final as (
    select
        records.record_key,
        records.source_system,
        records.source_customer_id,
        records.has_customer_record,
        records.first_seen_at,
        cluster_records.record_key as cluster_key,
        components.cluster_size
    from records
    inner join components on records.record_number = components.record_number
    inner join records as cluster_records on components.component_number = cluster_records.record_number
)

select * from final
