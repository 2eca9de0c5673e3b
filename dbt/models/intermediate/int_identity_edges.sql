-- One row per ordered pair of records that share a usable key, with the key types that link them.
with

-- Read twice: inlined, not copied (DuckDB 1.4 copies a CTE read twice, every column of it, into memory).
identity_keys as not materialized (
    select * from {{ ref('int_identity_keys') }}
),

blocked as (
    select * from {{ ref('int_identity_keys_blocked') }}
),

shared_keys as (
    -- Most key values belong to one record and link nothing: leave them out before pairing.
    select
        key_type,
        key_value
    from identity_keys
    group by key_type, key_value
    having count(*) >= 2
),

usable_keys as (
    select identity_keys.*
    from identity_keys
    semi join shared_keys
        on
            identity_keys.key_type = shared_keys.key_type
            and identity_keys.key_value = shared_keys.key_value
    anti join blocked
        on
            identity_keys.key_type = blocked.key_type
            and identity_keys.key_value = blocked.key_value
),

pairs as (
    select
        usable_keys.record_key,
        linked_keys.record_key as linked_record_key,
        usable_keys.key_type
    from usable_keys
    inner join usable_keys as linked_keys
        on
            usable_keys.key_type = linked_keys.key_type
            and usable_keys.key_value = linked_keys.key_value
            and usable_keys.record_key != linked_keys.record_key
    where
        not usable_keys.needs_compatible_names
        or {{ names_compatible('usable_keys.name_tokens', 'linked_keys.name_tokens') }}
),

linked_by as (
    -- One flag per key type (fixed-size state: the aggregation of millions of pairs can spill to disk).
    select
        {% for key_type in identity_key_types() -%}
            bool_or(key_type = '{{ key_type }}') as by_{{ key_type }},
        {% endfor -%}
        record_key,
        linked_record_key
    from pairs
    group by record_key, linked_record_key
),

final as (
    select
        record_key,
        linked_record_key,
        list_filter(
            [
                {% for key_type in identity_key_types() -%}
                    case when by_{{ key_type }} then '{{ key_type }}' end,
                {% endfor -%}
            ],
            key_type -> key_type is not null
        ) as key_types
    from linked_by
)

select * from final
