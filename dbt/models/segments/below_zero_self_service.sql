-- Customers whose profit is below zero, mostly through costly service contacts, with an e-mail: invite
-- them to cheaper self-service channels (app, website) instead of the call center.
with

customers as (
    select * from {{ ref('customer_360') }}
),

contact_uplift as (
    {{ contact_uplift_of('email') }}
),

final as (
    select
        customer_id,
        full_name,
        email,
        preferred_service_channel,
        service_contacts,
        profit_in_value_window,
        {{ contact_pays_columns('-profit_in_value_window') }}
    from customers
    cross join contact_uplift
    where value_tier = 'below_zero' and service_contacts > 0 and email is not null
)

select * from final
