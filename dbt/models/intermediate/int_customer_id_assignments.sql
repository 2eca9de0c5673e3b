{{
    config(
        materialized='incremental',
        incremental_strategy='append',
        full_refresh=false,
    )
}}
-- The stable-id ledger: one row each time a record gets a customer id (new record, merge, split). Append
-- only, and never rebuilt (full_refresh=false): the state that keeps ids stable across runs and rebuilds.
--   * a cluster keeps the oldest id its records already had; the other ids of a merge are retired;
--   * an id whose records split over several clusters stays with the cluster holding most of them;
--   * a cluster without an id gets a new one above every id ever issued, so no id is reused (an erased
--     person's rows leave the ledger; the highest id issued then is kept in raw._erasure_state).
with

-- The clusters this build recomputed (all of them in a full build): every other record keeps its id, and no
-- id of theirs is held by a recomputed record (a cluster's records share one id).
-- Read twice: inlined, not copied (DuckDB 1.4 copies a CTE read twice, every column of it, into memory).
clusters as {{ inlined() }} (
    select * from {{ ref('int_identity_clusters') }}
    where changed_at = {{ build_started_at() }}
),

ledger as (
    {% if is_incremental() %}
        select ledger.*
        from {{ this }} as ledger
        semi join clusters on ledger.record_key = clusters.record_key
    {% else %}
        select
            null::string as record_key,
            null::bigint as customer_id,
            null::bigint as previous_customer_id,
            null::string as reason,
            null::timestamp as assigned_at
        where false
    {% endif %}
),

current_assignments as (
    {{ current_assignments('ledger') }}
),

id_ages as (
    -- When each id was first issued, from the whole ledger (records that held it may have moved on).
    select
        whole_ledger.customer_id,
        min(whole_ledger.assigned_at) as issued_at
    from {% if is_incremental() %}{{ this }}{% else %}ledger{% endif %} as whole_ledger
    semi join current_assignments on whole_ledger.customer_id = current_assignments.customer_id
    group by whole_ledger.customer_id
),

highest_issued_id as (
    -- Above every id the ledger holds and every id it held before an erasure removed its rows.
    select greatest(
        (select coalesce(max(customer_id), 0) from {% if is_incremental() %}{{ this }}{% else %}ledger{% endif %}),
        (select coalesce(max(highest_issued_customer_id), 0) from {{ source('erasure', '_erasure_state') }})
    ) as customer_id
),

candidate_ids as (
    select
        clusters.cluster_key,
        current_assignments.customer_id,
        id_ages.issued_at,
        count(*) as records
    from clusters
    inner join current_assignments on clusters.record_key = current_assignments.record_key
    inner join id_ages on current_assignments.customer_id = id_ages.customer_id
    group by clusters.cluster_key, current_assignments.customer_id, id_ages.issued_at
),

id_holders as (
    select
        customer_id,
        cluster_key
    from candidate_ids
    qualify row_number() over (partition by customer_id order by records desc, cluster_key asc) = 1
),

kept_ids as (
    select
        candidate_ids.cluster_key,
        candidate_ids.customer_id
    from candidate_ids
    inner join id_holders
        on
            candidate_ids.customer_id = id_holders.customer_id
            and candidate_ids.cluster_key = id_holders.cluster_key
    qualify row_number() over (
        partition by candidate_ids.cluster_key order by candidate_ids.issued_at, candidate_ids.customer_id
    ) = 1
),

clusters_without_id as (
    select distinct clusters.cluster_key
    from clusters
    anti join kept_ids on clusters.cluster_key = kept_ids.cluster_key
),

new_ids as (
    select
        clusters_without_id.cluster_key,
        highest_issued_id.customer_id + row_number() over (order by clusters_without_id.cluster_key) as customer_id
    from clusters_without_id
    cross join highest_issued_id
),

cluster_ids as (
    select
        cluster_key,
        customer_id
    from kept_ids
    union all
    select
        cluster_key,
        customer_id
    from new_ids
),

assignments as (
    select
        clusters.record_key,
        cluster_ids.customer_id,
        current_assignments.customer_id as previous_customer_id
    from clusters
    inner join cluster_ids on clusters.cluster_key = cluster_ids.cluster_key
    left join current_assignments on clusters.record_key = current_assignments.record_key
),

final as (
    select
        record_key,
        customer_id,
        previous_customer_id,
        case
            when previous_customer_id is null then 'new'
            when previous_customer_id in (select cluster_ids.customer_id from cluster_ids) then 'split'
            else 'merged'
        end as reason,
        {{ build_started_at() }} as assigned_at
    from assignments
    where previous_customer_id is distinct from customer_id
)

select * from final
