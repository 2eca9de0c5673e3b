{{
    config(
        materialized='incremental',
        incremental_strategy='replace_scope',
        scope_key='record_key',
        scope_columns=['record_key', 'linked_record_key'],
        scope_marker='linked_record_key',
    )
}}
-- depends_on: {{ ref('int_customer_records') }}  (read by the incremental build)
-- One row per ordered pair of records that share a usable key, with the key types that link them: a key value
-- at least two records hold and not blocked (int_identity_keys_blocked). Incremental: the links of the records
-- whose links may have changed are recomputed (replace_scope on either side of a pair).
with

-- Read twice: inlined, not copied (DuckDB 1.4 copies a CTE read twice, every column of it, into memory).
identity_keys as {{ inlined() }} (
    select * from {{ ref('int_identity_keys') }}
    where is_current
),

{% if is_incremental() -%}
    scope as (
        {{ records_with_changed_links() }}
    ),

    scope_key_values as (
        select
            key_type,
            key_value
        from identity_keys
        semi join scope on identity_keys.record_key = scope.record_key
    ),

    candidate_keys as {{ inlined() }} (
        select identity_keys.*
        from identity_keys
        semi join scope_key_values
            on
                identity_keys.key_type = scope_key_values.key_type
                and identity_keys.key_value = scope_key_values.key_value
    ),
{%- else -%}
    candidate_keys as {{ inlined() }} (
        select * from identity_keys
    ),
{%- endif %}

usable_values as (
    -- Most key values belong to one record and link nothing: leave them out before pairing.
    select
        key_type,
        key_value
    from candidate_keys
    group by key_type, key_value
    having count(*) >= 2
),

blocked as (
    select * from {{ ref('int_identity_keys_blocked') }}
),

usable_keys as {{ inlined() }} (
    select candidate_keys.*
    from candidate_keys
    semi join usable_values
        on
            candidate_keys.key_type = usable_values.key_type
            and candidate_keys.key_value = usable_values.key_value
    anti join blocked
        on
            candidate_keys.key_type = blocked.key_type
            and candidate_keys.key_value = blocked.key_value
),

{% if is_incremental() -%}
    pairing_keys as (
        -- The pairs start from the scope's side.
        select usable_keys.*
        from usable_keys
        semi join scope on usable_keys.record_key = scope.record_key
    ),
{%- else -%}
    pairing_keys as {{ inlined() }} (
        select * from usable_keys
    ),
{%- endif %}

pairs as (
    select
        pairing_keys.record_key,
        linked_keys.record_key as linked_record_key,
        pairing_keys.key_type
    from pairing_keys
    inner join usable_keys as linked_keys
        on
            pairing_keys.key_type = linked_keys.key_type
            and pairing_keys.key_value = linked_keys.key_value
            and pairing_keys.record_key != linked_keys.record_key
    where
        not pairing_keys.needs_compatible_names
        or {{ names_compatible('pairing_keys.name_tokens', 'linked_keys.name_tokens') }}
),

probabilistic_pairs as (
    -- The probabilistic pass's links (each pair once), both ways; in an incremental build, those with an end
    -- in the scope (a pass compares the records changed since, so a new link always has one).
    select
        links.record_key,
        links.linked_record_key,
        'probabilistic' as key_type
    from {{ source('identity', 'int_identity_probabilistic_links') }} as links
    where
        links.decision = 'link'
        {%- if is_incremental() %}
            and (
                links.record_key in (select scope.record_key from scope)
                or links.linked_record_key in (select scope.record_key from scope)
            )
        {%- endif %}
),

probabilistic_links as (
    select * from probabilistic_pairs
    union all
    select
        linked_record_key as record_key,
        record_key as linked_record_key,
        key_type
    from probabilistic_pairs
),

{% if is_incremental() -%}
    directed_pairs as (
        -- The pairs found from the scope's side, and the same pairs seen from the other side.
        select * from pairs
        union all
        select
            linked_record_key as record_key,
            record_key as linked_record_key,
            key_type
        from pairs
        union all
        select * from probabilistic_links
    ),
{%- else -%}
    directed_pairs as (
        select * from pairs
        union all
        select * from probabilistic_links
    ),
{%- endif %}


linked_by as (
    -- One flag per key type (fixed-size state: the aggregation of millions of pairs can spill to disk).
    select
        {% for key_type in identity_key_types() + ['probabilistic'] -%}
            bool_or(key_type = '{{ key_type }}') as by_{{ key_type }},
        {% endfor -%}
        record_key,
        linked_record_key
    from directed_pairs
    group by record_key, linked_record_key
),

final as (
    select
        record_key,
        linked_record_key,
        {%- set key_type_cases = [] %}
        {%- for key_type in identity_key_types() + ['probabilistic'] %}
            {%- do key_type_cases.append("case when by_" ~ key_type ~ " then '" ~ key_type ~ "' end") %}
        {%- endfor %}
        filter({{ list_of(key_type_cases) }}, key_type -> key_type is not null) as key_types
    from linked_by
)

{{ final_with_scope_rows('record_key') }}
