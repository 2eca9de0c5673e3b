-- The valid match keys of every customer record. CPF/CNPJ, e-mail and loyalty card link records alone; a
-- phone, or a CEP with the surname, link only records whose names are compatible (a household shares them).
with

customers as (
    select * from {{ ref('stg_raw__customers') }}
),

keys as (
    select
        source_system,
        source_customer_id,
        'document' as key_type,
        document_key as key_value
    from customers
    where document_key is not null
    union all
    select
        source_system,
        source_customer_id,
        'email' as key_type,
        email_key as key_value
    from customers
    where email_key is not null
    union all
    select
        source_system,
        source_customer_id,
        'loyalty' as key_type,
        loyalty_key as key_value
    from customers
    where loyalty_key is not null
    union all
    select
        source_system,
        source_customer_id,
        'phone' as key_type,
        phone_key as key_value
    from customers
    where phone_key is not null
    union all
    select
        source_system,
        source_customer_id,
        'postal_code_surname' as key_type,
        postal_code_key || ' ' || name_tokens[-1] as key_value
    from customers
    where postal_code_key is not null and len(name_tokens) >= 2
),

final as (
    select
        {{ record_key('keys.source_system', 'keys.source_customer_id') }} as record_key,
        keys.key_type,
        keys.key_value,
        keys.key_type in ('phone', 'postal_code_surname') as needs_compatible_names,
        customers.name_tokens
    from keys
    inner join customers
        on
            keys.source_system = customers.source_system
            and keys.source_customer_id = customers.source_customer_id
)

select * from final
