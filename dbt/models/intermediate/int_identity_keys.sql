{{
    config(
        materialized='incremental',
        unique_key='record_key',
        incremental_strategy='delete+insert',
        post_hook="{{ delete_where(this, 'not is_current and changed_at < ' ~ build_started_at()) }}",
    )
}}
-- depends_on: {{ ref('int_customer_records') }}  (read by the incremental build)
-- The valid match keys of every customer record. CPF/CNPJ, e-mail and loyalty card link records alone; a
-- phone, or a CEP with the surname, link only records whose names are compatible (a household shares them).
-- Incremental: the records changed in this build get their keys anew; a key a record no longer holds stays
-- until the build ends as not is_current, so the edges find who else held it.
with

customers as (
    select customers.*
    from {{ ref('stg_raw__customers') }} as customers
    {%- if is_incremental() %}
        semi join {{ changed_in_this_build(ref('int_customer_records'), ['record_key']) }} as changed_records
            on {{ record_key('customers.source_system', 'customers.source_customer_id') }} = changed_records.record_key
    {%- endif %}
),

keys as (
    -- One pass over the records: each key column becomes a row named by its key type; a missing key (null)
    -- makes none.
    {% call unpivoted(identity_key_types(), 'key_type', 'key_value') -%}
        select
            source_system,
            source_customer_id,
            name_tokens,
            document_key as document,  -- noqa: RF04
            email_key as email,
            loyalty_key as loyalty,
            phone_key as phone,
            case when {{ list_size('name_tokens') }} >= 2 then postal_code_key || ' ' || {{ list_at('name_tokens', -1) }} end as postal_code_surname
        from customers
    {%- endcall %}
),

current_keys as (
    select
        {{ record_key('source_system', 'source_customer_id') }} as record_key,
        key_type,
        key_value,
        key_type in ('phone', 'postal_code_surname') as needs_compatible_names,
        name_tokens,
        true as is_current,
        {{ build_started_at() }} as changed_at
    from keys
),

final as (
    select * from current_keys
    {%- if is_incremental() %}
        union all
        select
            previous.record_key,
            previous.key_type,
            previous.key_value,
            previous.needs_compatible_names,
            previous.name_tokens,
            false as is_current,
            {{ build_started_at() }} as changed_at
        from {{ this }} as previous
        semi join {{ changed_in_this_build(ref('int_customer_records'), ['record_key']) }} as changed_records
            on previous.record_key = changed_records.record_key
        anti join current_keys
            on
                previous.record_key = current_keys.record_key
                and previous.key_type = current_keys.key_type
                and previous.key_value = current_keys.key_value
        where previous.is_current
    {%- endif %}
)

select * from final
