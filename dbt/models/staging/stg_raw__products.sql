with

source as (
    select * from {{ source('raw', 'products') }}
),

cleaned as (
    select
        _source_system as source_system,
        trim(product_id) as product_id,
        nullif(lower(trim(product_type)), '') as product_type,
        nullif(trim(name), '') as product_name,
        list_price,
        unit_cost,
        _source_file as source_file,
        _row_number as source_row_number,
        _loaded_at as loaded_at
    from source
),

latest_version as (
    select *
    from cleaned
    qualify row_number() over (
        partition by source_system, product_id
        order by loaded_at desc, source_file desc, source_row_number desc
    ) = 1
),

final as (
    select * from latest_version
)

select * from final
