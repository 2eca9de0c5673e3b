{{
    config(
        materialized='incremental',
        unique_key=['source_system', 'source_customer_id'],
        incremental_strategy='delete+insert',
    )
}}
with

source as (
    {{ delivered_since_last_build(source('raw', 'customers'), ['_source_system', 'trim(source_customer_id)']) }}
),

email_domain_corrections as (
    select * from {{ ref('email_domain_corrections') }}
),

cleaned as (
    select
        _source_system as source_system,
        trim(source_customer_id) as source_customer_id,
        nullif({{ regexp_replace_all("trim(full_name)", "'\s+'", "' '") }}, '') as full_name,
        nullif(trim(document_id), '') as document_id,
        nullif(lower(trim(email)), '') as email,
        nullif(trim(phone), '') as phone,
        birth_date,
        nullif(trim(city), '') as city,
        nullif(upper(trim(state)), '') as state,
        nullif(trim(postal_code), '') as postal_code,
        nullif({{ regexp_replace_all("trim(address)", "'\s+'", "' '") }}, '') as address,
        nullif(trim(loyalty_id), '') as loyalty_id,
        created_at,
        updated_at,
        {{ lineage_columns() }}
    from source
),

latest_version as (
    {{ latest_version('cleaned', ['source_system', 'source_customer_id'], newest_first='updated_at desc nulls last') }}
),

digits as (
    -- Each value's digits once: the key rules below read them many times.
    select
        *,
        {{ digits_of('phone') }} as phone_digits,
        {{ document_digits(digits_of('document_id')) }} as document_digits,
        {{ digits_of('postal_code') }} as postal_code_digits
    from latest_version
),

normalised as (
    select
        *,
        {{ email_address('email') }} as written_email_address,
        {{ phone_e164('phone', 'phone_digits') }} as phone_number,
        {{ document_issue('document_id', 'document_digits') }} as document_issue,
        nullif(upper({{ regexp_replace_all("coalesce(loyalty_id, '')", "'\s'", "''") }}), '') as loyalty_number,
        {{ name_tokens('full_name') }} as name_tokens,
        case when length(postal_code_digits) = 8 then postal_code_digits end as postal_code_key,
        {{ address_key('address') }} as address_key
    from digits
),

corrected as (
    -- A misspelt well-known domain (gmial.com) is corrected (seed email_domain_corrections).
    select
        normalised.*,
        split_part(normalised.written_email_address, '@', 1) || '@'
        || coalesce(email_domain_corrections.domain, split_part(normalised.written_email_address, '@', 2))
            as email_address
    from normalised
    left join email_domain_corrections
        on split_part(normalised.written_email_address, '@', 2) = email_domain_corrections.misspelled_domain
),

keyed as (
    -- Match keys (docs/identity.md): a value that is malformed, a placeholder or on the block list is no key;
    -- the *_issue columns say why, for the identity report.
    select
        *,
        case
            when email is null then null
            when email_address is null then 'invalid_format'
            when {{ is_blocklisted('email', 'email_address') }} then 'junk_value'
        end as email_issue,
        case
            when phone is null then null
            when phone_number is null then 'invalid_format'
            when {{ is_blocklisted('phone', 'phone_number') }} then 'junk_value'
        end as phone_issue,
        case
            when
                document_issue is null and document_digits != ''
                and {{ is_blocklisted('document', 'document_digits') }} then 'junk_value'
            else document_issue
        end as document_key_issue,
        case
            when
                loyalty_number is not null
                and (
                    {{ is_blocklisted('loyalty', 'loyalty_number') }}
                    or {{ is_one_repeated_character('loyalty_number') }}
                ) then 'junk_value'
        end as loyalty_issue
    from corrected
),

final as (
    select
        source_system,
        source_customer_id,
        full_name,
        document_id,
        email,
        phone,
        birth_date,
        city,
        state,
        postal_code,
        address,
        loyalty_id,
        created_at,
        updated_at,
        case when email_issue is null then email_address end as email_key,
        case when phone_issue is null then phone_number end as phone_key,
        case when document_key_issue is null and document_digits != '' then document_digits end as document_key,
        case when loyalty_issue is null then loyalty_number end as loyalty_key,
        name_tokens,
        postal_code_key,
        address_key,
        email_issue,
        phone_issue,
        document_key_issue as document_issue,
        loyalty_issue,
        source_file,
        source_row_number,
        loaded_at
    from keyed
)

select * from final
