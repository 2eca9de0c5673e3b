-- One row per ordered pair of records that share a usable key, with the key types that link them.
with

identity_keys as (
    select * from {{ ref('int_identity_keys') }}
),

blocked as (
    select * from {{ ref('int_identity_keys_blocked') }}
),

usable_keys as (
    select identity_keys.*
    from identity_keys
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

final as (
    select
        record_key,
        linked_record_key,
        list(distinct key_type order by key_type) as key_types
    from pairs
    group by record_key, linked_record_key
)

select * from final
