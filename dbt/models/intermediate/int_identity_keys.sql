-- The valid match keys of every customer record. CPF/CNPJ, e-mail and loyalty card link records alone; a
-- phone, or a CEP with the surname, link only records whose names are compatible (a household shares them).
with

customers as (
    select * from {{ ref('stg_raw__customers') }}
),

keys as (
    -- One pass over the records: each key column becomes a row named by its key type; a missing key (null)
    -- makes none.
    unpivot (
        select
            source_system,
            source_customer_id,
            name_tokens,
            document_key as document,  -- noqa: RF04
            email_key as email,
            loyalty_key as loyalty,
            phone_key as phone,
            case when len(name_tokens) >= 2 then postal_code_key || ' ' || name_tokens[-1] end as postal_code_surname
        from customers
    )
    on {{ identity_key_types() | join(', ') }}
    into name key_type value key_value
),

final as (
    select
        {{ record_key('source_system', 'source_customer_id') }} as record_key,
        key_type,
        key_value,
        key_type in ('phone', 'postal_code_surname') as needs_compatible_names,
        name_tokens
    from keys
)

select * from final
