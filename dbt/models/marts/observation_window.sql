-- One row: as_of, the observation end every metric is computed at (docs/metrics.md): var('as_of') when set,
-- else the latest event date in the loaded data, so that sample data works any day.
with

purchases as (
    select * from {{ ref('stg_raw__purchases') }}
),

service_interactions as (
    select * from {{ ref('stg_raw__service_interactions') }}
),

campaign_contacts as (
    select * from {{ ref('stg_raw__campaign_contacts') }}
),

latest_events as (
    select max(purchased_at) as latest_at from purchases
    union all
    select max(occurred_at) from service_interactions
    union all
    select max(contacted_at) from campaign_contacts
),

final as (
    select
        coalesce(
            try_cast(nullif('{{ var("as_of") }}', '') as date),
            (select max(latest_at)::date from latest_events),
            current_date
        ) as as_of,
        nullif('{{ var("as_of") }}', '') is not null as is_configured
)

select * from final
