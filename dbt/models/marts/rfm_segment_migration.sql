-- One row per (from_segment, to_segment) between the two latest as_of snapshots: how many customers
-- present in both moved from one segment to the other (e.g. Champions -> At Risk).
with

-- Read twice: inlined, not copied (DuckDB 1.4 copies a CTE read twice, every column of it, into memory).
history as {{ inlined() }} (
    select * from {{ ref('customer_rfmt_history') }}
),

snapshots as (
    select
        as_of,
        dense_rank() over (order by as_of desc) as recency_rank
    from (select distinct as_of from history) as snapshot_dates
),

latest as (
    select history.*
    from history
    inner join snapshots on history.as_of = snapshots.as_of
    where snapshots.recency_rank = 1
),

previous as (
    select history.*
    from history
    inner join snapshots on history.as_of = snapshots.as_of
    where snapshots.recency_rank = 2
),

final as (
    select
        previous.as_of as from_as_of,
        latest.as_of as to_as_of,
        previous.rfm_segment as from_segment,
        latest.rfm_segment as to_segment,
        count(*) as customers
    from previous
    inner join latest on previous.customer_id = latest.customer_id
    group by all
)

select * from final
