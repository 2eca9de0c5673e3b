{{
    config(
        materialized='incremental',
        unique_key=['source_system', 'order_id'],
        incremental_strategy='delete+insert',
        on_schema_change='fail',
    )
}}
-- depends_on: {{ ref('int_identity_clusters') }}  (read by the incremental build)
-- Incremental: the orders loaded since the last build, those of customers whose records were re-clustered, and
-- those of products whose catalogue entry was loaded since.
with

products as (
    select * from {{ ref('stg_raw__products') }}
),

purchases as (
    select purchases.*
    from {{ ref('stg_raw__purchases') }} as purchases
    {{ facts_to_rebuild('purchases', reference='products', reference_keys=['product_id']) }}
),

id_map as (
    select * from {{ ref('customer_id_map') }}
),

catalogue as (
    -- One catalogue entry per product id (the latest loaded when several catalogues list it).
    select *
    from products
    qualify row_number() over (partition by product_id order by loaded_at desc, source_system asc) = 1
),

final as (
    select
        purchases.source_system,
        purchases.order_id,
        id_map.customer_id,
        purchases.purchased_at,
        purchases.purchased_at::date as purchase_date,
        purchases.product_id,
        coalesce(purchases.product_type, catalogue.product_type) as product_type,
        purchases.store_type,
        purchases.store_id,
        purchases.quantity,
        purchases.amount,
        -- Cost of goods: the order's own, else its unit cost, else the catalogue's unit cost, times quantity.
        (coalesce(
            purchases.cost,
            purchases.unit_cost * coalesce(purchases.quantity, 1),
            sign(purchases.amount) * catalogue.unit_cost * coalesce(purchases.quantity, 1)
        ))::decimal(18, 4) as cost,  -- noqa: RF04
        purchases.is_return,
        id_map.has_customer_record as customer_record_found,
        greatest(purchases.loaded_at, catalogue.loaded_at) as loaded_at,
        {{ build_started_at() }} as built_at
    from purchases
    inner join id_map
        on
            purchases.source_system = id_map.source_system
            and purchases.source_customer_id = id_map.source_customer_id
    left join catalogue on purchases.product_id = catalogue.product_id
)

select * from final
