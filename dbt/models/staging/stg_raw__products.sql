with

source as (
    select * from {{ source('raw', 'products') }}
),

cleaned as (
    select
        _source_system as source_system,
        trim(product_id) as product_id,
        nullif(lower(trim(product_type)), '') as product_type,
        nullif(lower(trim(family)), '') as product_family,
        nullif(trim(name), '') as product_name,
        list_price,
        unit_cost,
        {{ lineage_columns() }}
    from source
),

latest_version as (
    {{ latest_version('cleaned', ['source_system', 'product_id']) }}
),

final as (
    select * from latest_version
)

select * from final
