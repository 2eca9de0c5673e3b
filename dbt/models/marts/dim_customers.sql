{{
    config(
        materialized='incremental',
        incremental_strategy='replace_scope',
        scope_key='customer_id',
        scope_marker='source_records',
        on_schema_change='fail',
    )
}}
-- depends_on: {{ ref('int_customer_records') }}, {{ ref('int_customer_id_assignments') }}
--   (read by the incremental build)
-- Incremental: the customers whose records this build re-clustered or gave new facts, and the ids retired.
with

{% if is_incremental() -%}
    scope as (
        {{ customers_changed_in_this_build() }}
    ),
{%- endif %}

records as (
    select * from {{ ref('int_identity_clusters') }}
),

id_map as (
    {{ rows_in_scope(ref('customer_id_map'), 'id_map') }}
),

candidates as (
    {{ rows_in_scope(ref('int_customer_attribute_candidates'), 'candidates') }}
),

purchases as (
    {{ rows_in_scope(ref('fct_purchases'), 'purchases') }}
),

service_interactions as (
    {{ rows_in_scope(ref('fct_service_interactions'), 'service_interactions') }}
),

campaign_contacts as (
    {{ rows_in_scope(ref('fct_campaign_contacts'), 'campaign_contacts') }}
),

first_events as (
    select
        customer_id,
        min(purchased_at) as first_event_at
    from purchases
    group by customer_id
    union all
    select
        customer_id,
        min(occurred_at) as first_event_at
    from service_interactions
    group by customer_id
    union all
    select
        customer_id,
        min(contacted_at) as first_event_at
    from campaign_contacts
    group by customer_id
),

golden_values as (
    select
        customer_id,
        {%- for attribute in ['full_name', 'email', 'phone', 'document_id', 'birth_date', 'city', 'state', 'postal_code', 'loyalty_id'] %}
            any_value(candidate_value) filter (where attribute = '{{ attribute }}') as {{ attribute }}{{ ',' if not loop.last }}
        {%- endfor %}
    from candidates
    where survivor_rank = 1
    group by customer_id
),

customer_records as (
    select
        id_map.customer_id,
        -- Sorted after: an ordered aggregate (list(... order by ...)) buffers every row in memory.
        array_sort(array_distinct(array_agg(id_map.source_system))) as source_systems,
        count(*) as source_records,
        bool_or(id_map.has_customer_record) as has_customer_record,
        min(records.first_seen_at) as first_seen_at
    from id_map
    inner join records
        on
            id_map.source_system = records.source_system
            and id_map.source_customer_id = records.source_customer_id
    group by id_map.customer_id
),

final as (
    select
        customer_records.customer_id,
        golden_values.full_name,
        golden_values.email,
        golden_values.phone,
        golden_values.document_id,
        golden_values.birth_date::date as birth_date,
        golden_values.city,
        golden_values.state,
        golden_values.postal_code,
        golden_values.loyalty_id,
        -- The first sign of the customer: a record created, a purchase, a contact.
        least(
            customer_records.first_seen_at,
            (
                select min(first_events.first_event_at) from first_events
                where first_events.customer_id = customer_records.customer_id
            )
        ) as first_seen_at,
        customer_records.source_systems,
        customer_records.source_records,
        customer_records.has_customer_record
    from customer_records
    left join golden_values on customer_records.customer_id = golden_values.customer_id
)

{{ final_with_scope_rows('customer_id') }}
