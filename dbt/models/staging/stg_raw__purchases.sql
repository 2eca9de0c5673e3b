with

source as (
    select * from {{ source('raw', 'purchases') }}
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
        _source_file as source_file,
        _row_number as source_row_number,
        _loaded_at as loaded_at
    from source
),

latest_version as (
    select *
    from cleaned
    qualify row_number() over (
        partition by source_system, order_id
        order by loaded_at desc, source_file desc, source_row_number desc
    ) = 1
),

final as (
    select * from latest_version
)

select * from final
