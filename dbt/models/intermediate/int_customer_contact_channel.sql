-- The channel to contact each customer on (customer_360.best_contact_channel, the channel of the next best
-- offer): among the channels the customer opted in to (latest consent per channel), the one that matches the
-- service channel they use most with us, else the cheapest (seed contact_channels).
with

consents as (
    select * from {{ ref('customer_consents') }}
),

contact_channels as (
    select * from {{ ref('contact_channels') }}
),

service_interactions as (
    select * from {{ ref('fct_service_interactions') }}
),

preferred_service_channels as (
    {{ most_used('service_interactions', 'channel', 'occurred_at', 'preferred_service_channel') }}
),

final as (
    select
        consents.customer_id,
        -- Ranked by (not the channel they use with us, cost): false sorts first, then the cheapest.
        min_by(
            contact_channels.channel,
            (
                not coalesce(
                    contact_channels.service_channel = preferred_service_channels.preferred_service_channel, false
                ),
                contact_channels.cost_per_contact
            )
        ) as best_contact_channel
    from consents
    inner join contact_channels on consents.channel = contact_channels.channel
    left join preferred_service_channels on consents.customer_id = preferred_service_channels.customer_id
    where consents.status = 'opt_in'
    group by consents.customer_id
)

select * from final
