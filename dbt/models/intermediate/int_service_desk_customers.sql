-- The customers the service desk may hear from next: a service contact in the last
-- var('service_desk_recent_days') days to as_of, or a complaint still open (macro is_open_complaint, as
-- customer_360.open_complaints counts them). One row each, with the last contact and the open protocols.
with

service_interactions as (
    select * from {{ ref('fct_service_interactions') }}
),

observation_window as (
    select * from {{ ref('observation_window') }}
),

final as (
    select
        service_interactions.customer_id,
        max(service_interactions.occurred_at) as last_service_contact_at,
        count(*) filter (where not service_interactions.is_resolved) as open_protocols
    from service_interactions
    cross join observation_window
    where service_interactions.occurred_at::date <= observation_window.as_of
    group by service_interactions.customer_id
    having
        max(service_interactions.occurred_at)::date
        > any_value(observation_window.as_of) - interval {{ var('service_desk_recent_days') }} day
        or bool_or({{ is_open_complaint('service_interactions') }})
)

select * from final
