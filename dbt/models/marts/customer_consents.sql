{{
    config(
        materialized='incremental',
        incremental_strategy='replace_scope',
        scope_key='customer_id',
        scope_marker='channel',
        on_schema_change='fail',
    )
}}
-- depends_on: {{ ref('int_customer_records') }}, {{ ref('int_identity_clusters') }},
--   {{ ref('int_customer_id_assignments') }}  (read by the incremental build)
-- Incremental: the customers whose records this build re-clustered or gave new facts, and the ids retired.
with

{% if is_incremental() -%}
    scope as (
        {{ customers_changed_in_this_build() }}
    ),
{%- endif %}

consents as (
    select * from {{ ref('stg_raw__consents') }}
),

id_map as (
    {{ rows_in_scope(ref('customer_id_map'), 'id_map') }}
),

statements as (
    select
        id_map.customer_id,
        consents.channel,
        consents.status,
        consents.recorded_at,
        consents.legal_basis,
        consents.source_system
    from consents
    inner join id_map
        on
            consents.source_system = id_map.source_system
            and consents.source_customer_id = id_map.source_customer_id
    where consents.channel is not null and consents.status is not null
),

final as (
    -- The latest statement per person and channel across all their records; opt-out wins a tie.
    select *
    from statements
    qualify row_number() over (
        partition by customer_id, channel
        order by recorded_at desc, case status when 'opt_out' then 0 else 1 end, source_system asc
    ) = 1
)

{{ final_with_scope_rows('customer_id') }}
