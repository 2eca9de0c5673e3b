{{
    config(
        materialized='incremental',
        incremental_strategy='replace_scope',
        scope_key='customer_id',
        scope_marker='attribute',
    )
}}
-- depends_on: {{ ref('int_identity_clusters') }}, {{ ref('int_customer_id_assignments') }}
--   (read by the incremental build)
-- One row per customer, attribute and candidate value, with what survivorship ranks it by: the source's
-- priority for the attribute (seed source_priority, lower wins: an attribute's own list if it has one, else
-- the * list; unlisted sources last), how recent, how frequent among the customer's records.
-- survivor_rank = 1 is the golden value. Incremental: the customers of the records whose cluster this build
-- recomputed, and the ids those records held before (a retired id loses its rows), are ranked anew.
with

{% if is_incremental() -%}
    scope as (
        {{ customers_changed_in_this_build(touched_by_facts=false) }}
    ),
{%- endif %}

customers as (
    select * from {{ ref('stg_raw__customers') }}
),

id_map as (
    {{ rows_in_scope(ref('customer_id_map'), 'id_map') }}
),

source_priority as (
    select * from {{ ref('source_priority') }}
),

attribute_values as (
    {%- set attributes = ['full_name', 'email', 'phone', 'document_id', 'birth_date', 'city', 'state', 'postal_code', 'loyalty_id'] %}
    {% call unpivoted(attributes, 'attribute', 'candidate_value') -%}
        select
            id_map.customer_id,
            customers.source_system,
            customers.source_customer_id,
            coalesce(customers.updated_at, customers.created_at, customers.loaded_at) as observed_at,
            customers.full_name,
            customers.email_key as email,
            customers.phone_key as phone,
            customers.document_key as document_id,
            cast(customers.birth_date as string) as birth_date,
            customers.city,
            customers.state,
            customers.postal_code,
            customers.loyalty_key as loyalty_id
        from customers
        inner join id_map
            on
                customers.source_system = id_map.source_system
                and customers.source_customer_id = id_map.source_customer_id
    {%- endcall %}
),

attributes_with_own_priorities as (
    select distinct source_priority.attribute
    from source_priority
    where source_priority.attribute != '*'
),

flagged as (
    select
        attribute_values.*,
        attributes_with_own_priorities.attribute is not null as has_own_priorities
    from attribute_values
    left join attributes_with_own_priorities
        on attribute_values.attribute = attributes_with_own_priorities.attribute
),

prioritised as (
    -- source_priority is unique per (attribute, source_system): each join finds one row at most.
    select
        flagged.*,
        coalesce(
            case when flagged.has_own_priorities then own_priority.priority else any_priority.priority end,
            1000
        ) as priority
    from flagged
    left join source_priority as own_priority
        on
            flagged.attribute = own_priority.attribute
            and flagged.source_system = own_priority.source_system
    left join source_priority as any_priority
        on
            any_priority.attribute = '*'
            and flagged.source_system = any_priority.source_system
),

counted as (
    select
        *,
        count(*) over (partition by customer_id, attribute, candidate_value) as frequency
    from prioritised
),

final as (
    select
        *,
        row_number() over (
            partition by customer_id, attribute
            -- The same value from records alike ranks by record, so every build ranks alike.
            order by
                priority asc, observed_at desc nulls last, frequency desc, candidate_value asc,
                source_system asc, source_customer_id asc
        ) as survivor_rank
    from counted
)

{{ final_with_scope_rows('customer_id') }}
