with

ledger as (
    select * from {{ ref('int_customer_id_assignments') }}
),

edges as (
    select * from {{ ref('int_identity_edges') }}
),

id_map as (
    select * from {{ ref('customer_id_map') }}
),

current_assignments as (
    select
        {{ record_key('source_system', 'source_customer_id') }} as record_key,
        customer_id
    from id_map
),

merged_records as (
    select
        record_key,
        previous_customer_id as retired_customer_id,
        customer_id as kept_customer_id,
        assigned_at
    from ledger
    where reason = 'merged'
),

linking_keys as (
    -- The keys joining the retired id's records to the rest of the merged customer.
    select
        merged_records.retired_customer_id,
        merged_records.kept_customer_id,
        {{ unnested('edges.key_types') }} as key_type
    from merged_records
    inner join edges on merged_records.record_key = edges.record_key
    inner join current_assignments on edges.linked_record_key = current_assignments.record_key
    anti join merged_records as same_retired
        on
            edges.linked_record_key = same_retired.record_key
            and merged_records.retired_customer_id = same_retired.retired_customer_id
    where current_assignments.customer_id = merged_records.kept_customer_id
),

linked_key_lists as (
    select
        retired_customer_id,
        kept_customer_id,
        {{ sorted_list('key_type', distinct=true) }} as linked_by
    from linking_keys
    group by retired_customer_id, kept_customer_id
),

moves as (
    select
        kept_customer_id,
        retired_customer_id,
        min(assigned_at) as merged_at,
        count(*) as records_moved
    from merged_records
    group by kept_customer_id, retired_customer_id
),

final as (
    select
        moves.kept_customer_id,
        moves.retired_customer_id,
        moves.merged_at,
        moves.records_moved,
        linked_key_lists.linked_by
    from moves
    left join linked_key_lists
        on
            moves.retired_customer_id = linked_key_lists.retired_customer_id
            and moves.kept_customer_id = linked_key_lists.kept_customer_id
)

select * from final
