{{
    config(
        materialized='incremental',
        unique_key=['source_system', 'order_id'],
        incremental_strategy='delete+insert',
    )
}}
with

source as (
    {{ delivered_since_last_build(source('raw', 'purchases'), ['_source_system', 'trim(order_id)']) }}
),

cleaned as (
    select
        _source_system as source_system,
        trim(order_id) as order_id,
        trim(source_customer_id) as source_customer_id,
        purchased_at,
        amount,
        amount < 0 as is_return,
        nullif(trim(product_id), '') as product_id,
        nullif(lower(trim(product_type)), '') as product_type,
        quantity,
        unit_cost,
        cost,
        {{ canonical_value('store_type', 'store_type') }} as store_type,
        nullif(trim(store_id), '') as store_id,
        nullif(trim(store_type), '') as source_store_type,
        {{ lineage_columns() }}
    from source
),

latest_version as (
    {{ latest_version('cleaned', ['source_system', 'order_id']) }}
),

final as (
    select * from latest_version
)

select * from final
