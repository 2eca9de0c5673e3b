-- Key values shared by more source records than var('identity_max_records_per_key'): an over-merge risk
-- (a shop's own phone, a shared placeholder), so they link nothing.
with

identity_keys as (
    select * from {{ ref('int_identity_keys') }}
    where is_current
),

shared as (
    select
        key_type,
        key_value,
        count(*) as records  -- a record has one value per key type
    from identity_keys
    group by key_type, key_value
),

final as (
    select *
    from shared
    where records > {{ var('identity_max_records_per_key') }}
)

select * from final
