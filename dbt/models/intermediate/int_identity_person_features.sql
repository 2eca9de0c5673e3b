-- One row per customer record with what the probabilistic pass of identity compares (the Python asset
-- intermediate/int_identity_probabilistic_links, lib/identity_probabilistic.py: FEATURES): name words, birth date,
-- CEP, address, city, and the partial keys, whether or not they are valid keys; the exact keys (pairs that share
-- one are the exact pass's to judge) and when the record's version was loaded (a pass compares what is new).
-- A view over staging: the pass reads it before the identity graph is built.
with

customers as (
    select * from {{ ref('stg_raw__customers') }}
),

final as (
    select
        {{ record_key('source_system', 'source_customer_id') }} as record_key,
        loaded_at,
        {{ list_at('name_tokens', 1) }} as first_name,
        case when {{ list_size('name_tokens') }} >= 2 then {{ list_at('name_tokens', -1) }} end as surname,
        birth_date,
        postal_code_key as postal_code,
        lower(address_key) as address,
        nullif(lower({{ strip_accents("city") }}), '') as city,
        nullif({{ digits_of('document_id') }}, '') as document,
        case
            when length({{ digits_of('phone') }}) >= 8
                then right({{ digits_of('phone') }}, 8)
        end as phone_tail,
        document_key,
        email_key,
        loyalty_key,
        phone_key,
        case when {{ list_size('name_tokens') }} >= 2 then postal_code_key || ' ' || {{ list_at('name_tokens', -1) }} end as postal_code_surname
    from customers
)

select * from final
