{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='as_of',
        full_refresh=false,
        on_schema_change='append_new_columns',
    )
}}
-- One row per customer per as_of snapshot of customer_rfmt. A run at an as_of already stored replaces that
-- snapshot; earlier snapshots are kept, and survive --full-refresh.
with

customer_rfmt as (
    select * from {{ ref('customer_rfmt') }}
),

final as (
    select
        customer_id,
        as_of,
        recency_days,
        frequency,
        monetary,
        tenure_days,
        r_score,
        f_score,
        m_score,
        t_score,
        rfm_cell,
        rfm_segment,
        {{ build_started_at() }} as built_at
    from customer_rfmt
)

select * from final
