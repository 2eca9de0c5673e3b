{{
    config(
        materialized='incremental',
        incremental_strategy='delete+insert',
        unique_key='as_of',
        full_refresh=false,
        on_schema_change='append_new_columns',
    )
}}
-- One row per customer per as_of snapshot of customer_value's tier, as customer_rfmt_history keeps RFMT: a run
-- at an as_of already stored replaces that snapshot; earlier snapshots are kept, and survive --full-refresh.
-- What a campaign's contacts were worth when contacted (campaign_performance_by_segment) is read from here.
with

customer_value as (
    select * from {{ ref('customer_value') }}
),

observation_window as (
    select * from {{ ref('observation_window') }}
),

final as (
    select
        customer_value.customer_id,
        observation_window.as_of,
        customer_value.value_tier,
        customer_value.profit,
        customer_value.clv,
        {{ build_started_at() }} as built_at
    from customer_value
    cross join observation_window
)

select * from final
