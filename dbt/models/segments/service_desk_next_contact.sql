-- The service desk's list for the morning (service_desk_offers): the customers it may hear from next, with
-- their tier, the route to serve them by, the recovery allowance of an open complaint, and the offer to make at
-- the contact (none with an open complaint: recovery first).
with

desk as (
    select * from {{ ref('service_desk_offers') }}
),

customers as (
    select * from {{ ref('customer_360') }}
),

final as (
    select
        desk.customer_id,
        customers.full_name,
        customers.phone,
        desk.last_service_contact_at,
        desk.open_protocols,
        desk.service_tier,
        desk.service_route,
        desk.complaint_recovery_allowance,
        desk.offer_product_type,
        desk.reason,
        desk.expected_incremental_profit::decimal(18, 4) as expected_incremental_profit
    from desk
    inner join customers on desk.customer_id = customers.customer_id
)

select * from final
