{{
    config(
        materialized='incremental',
        unique_key=['source_system', 'source_customer_id'],
        incremental_strategy='delete+insert',
        on_schema_change='fail',
    )
}}
-- Incremental: the records whose cluster this build recomputed (no other record's id changed).
with

-- Read twice: inlined, not copied (DuckDB 1.4 copies a CTE read twice, every column of it, into memory).
clusters as {{ inlined() }} (
    select * from {{ ref('int_identity_clusters') }}
    {%- if is_incremental() %}
        where changed_at = {{ build_started_at() }}
    {%- endif %}
),

ledger as (
    select ledger.*
    from {{ ref('int_customer_id_assignments') }} as ledger
    {%- if is_incremental() %}
        semi join clusters on ledger.record_key = clusters.record_key
    {%- endif %}
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
