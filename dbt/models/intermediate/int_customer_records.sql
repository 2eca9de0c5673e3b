{{
    config(
        materialized='incremental',
        unique_key='record_key',
        incremental_strategy='delete+insert',
    )
}}
-- Every source customer the data knows: the customer files' records, and the customer ids that facts
-- reference but no customer file holds (a purchases-only source works alone; such ids are reported).
-- Incremental: a build adds or replaces the records staged since the last one and stamps them (changed_at),
-- so the identity models after it recompute only what those records touch; the records with facts staged since
-- are stamped touched_at (with the changed ones), for the per-customer marts. A record keeps its number.
with

-- Read twice: inlined, not copied (DuckDB 1.4 copies a CTE read twice, every column of it, into memory).
customers as {{ inlined() }} (
    select * from {{ ref('stg_raw__customers') }}
    {{ staged_since_last_build() }}
),

purchases as (
    select * from {{ ref('stg_raw__purchases') }}
    {{ staged_since_last_build() }}
),

service_interactions as (
    select * from {{ ref('stg_raw__service_interactions') }}
    {{ staged_since_last_build() }}
),

campaign_contacts as (
    select * from {{ ref('stg_raw__campaign_contacts') }}
    {{ staged_since_last_build() }}
),

consents as (
    select * from {{ ref('stg_raw__consents') }}
    {{ staged_since_last_build() }}
),

fact_references as (
    select
        source_system,
        source_customer_id,
        loaded_at
    from purchases
    union all
    select
        source_system,
        source_customer_id,
        loaded_at
    from service_interactions
    union all
    select
        source_system,
        source_customer_id,
        loaded_at
    from campaign_contacts
    union all
    select
        source_system,
        source_customer_id,
        loaded_at
    from consents
),

referenced_by_facts as (
    select
        source_system,
        source_customer_id,
        max(loaded_at) as staged_at
    from fact_references
    group by source_system, source_customer_id
),

records as (
    -- staged_at: the latest load of the record's version or facts read, so the next build reads after it.
    select
        {{ record_key('customers.source_system', 'customers.source_customer_id') }} as record_key,
        customers.source_system,
        customers.source_customer_id,
        true as has_customer_record,
        coalesce(customers.created_at, customers.loaded_at) as first_seen_at,
        greatest(customers.loaded_at, referenced_by_facts.staged_at) as staged_at
    from customers
    left join referenced_by_facts
        on
            customers.source_system = referenced_by_facts.source_system
            and customers.source_customer_id = referenced_by_facts.source_customer_id
    union all
    select
        {{ record_key('referenced_by_facts.source_system', 'referenced_by_facts.source_customer_id') }}
            as record_key,
        referenced_by_facts.source_system,
        referenced_by_facts.source_customer_id,
        false as has_customer_record,
        null::timestamp as first_seen_at,
        referenced_by_facts.staged_at
    from referenced_by_facts
    anti join customers
        on
            referenced_by_facts.source_system = customers.source_system
            and referenced_by_facts.source_customer_id = customers.source_customer_id
    {%- if is_incremental() %}
        -- An id already known: below, its facts only touch it.
        anti join {{ this }} as known
            on {{ record_key('referenced_by_facts.source_system', 'referenced_by_facts.source_customer_id') }}
            = known.record_key
    {%- endif %}
),

{% if is_incremental() -%}
    touched_by_facts as (
        -- Known records with new facts and no new version: the same record, touched.
        select
            known.record_key,
            known.record_number,
            known.source_system,
            known.source_customer_id,
            known.has_customer_record,
            known.first_seen_at,
            greatest(known.staged_at, referenced_by_facts.staged_at) as staged_at,
            known.changed_at,
            {{ build_started_at() }} as touched_at
        from referenced_by_facts
        inner join {{ this }} as known
            on {{ record_key('referenced_by_facts.source_system', 'referenced_by_facts.source_customer_id') }}
            = known.record_key
        anti join customers
            on
                referenced_by_facts.source_system = customers.source_system
                and referenced_by_facts.source_customer_id = customers.source_customer_id
    ),
{%- endif %}

final as (
    select
        records.record_key,
        {% if is_incremental() -%}
            coalesce(
                known.record_number,
                (select max(numbered.record_number) from {{ this }} as numbered) + row_number() over (
                    partition by known.record_number is null
                    order by records.source_system, records.source_customer_id
                )
            )
        {%- else -%}
            row_number() over (order by records.source_system, records.source_customer_id)
        {%- endif %} as record_number,
        records.source_system,
        records.source_customer_id,
        records.has_customer_record,
        records.first_seen_at,
        records.staged_at,
        {{ build_started_at() }} as changed_at,
        {{ build_started_at() }} as touched_at
    from records
    {%- if is_incremental() %}
        left join {{ this }} as known on records.record_key = known.record_key
    {%- endif %}
)

select * from final
{%- if is_incremental() %}
    union all
    select * from touched_by_facts
{%- endif %}
