-- One row per record pair the probabilistic pass of identity (docs/identity.md, 3b) held back for a data
-- steward: scored from C360_IDENTITY_REVIEW_PROBABILITY up to C360_IDENTITY_MATCH_PROBABILITY (`review`), or
-- above it but stopped by a guard: a record without a birth date between namesakes (`namesake`), or the
-- over-merge cap (`capped`). The evidence names comparison levels, never values;
-- the records are named by their source ids, as in customer_id_map.
with

held_back as (
    select *
    from {{ source('identity', 'int_identity_probabilistic_links') }}
    where decision in ('review', 'namesake', 'capped')
),

records as (
    select
        clusters.record_key,
        clusters.source_system,
        clusters.source_customer_id,
        id_map.customer_id
    from {{ ref('int_identity_clusters') }} as clusters
    inner join {{ ref('customer_id_map') }} as id_map
        on clusters.source_system = id_map.source_system
        and clusters.source_customer_id = id_map.source_customer_id
),

final as (
    select
        record.source_system,
        record.source_customer_id,
        record.customer_id,
        linked.source_system as linked_source_system,
        linked.source_customer_id as linked_source_customer_id,
        linked.customer_id as linked_customer_id,
        held_back.decision as reason,
        held_back.match_probability,
        held_back.match_weight,
        held_back.evidence,
        record.customer_id = linked.customer_id as already_one_customer,
        held_back.linked_at as scored_at
    from held_back
    inner join records as record on held_back.record_key = record.record_key
    inner join records as linked on held_back.linked_record_key = linked.record_key
)

select * from final
