with

clusters as (
    select * from {{ ref('int_identity_clusters') }}
),

ledger as (
    select * from {{ ref('int_customer_id_assignments') }}
),

current_assignments as (
    {{ current_assignments('ledger') }}
),

final as (
    select
        clusters.source_system,
        clusters.source_customer_id,
        current_assignments.customer_id,
        clusters.has_customer_record
    from clusters
    inner join current_assignments on clusters.record_key = current_assignments.record_key
)

select * from final
