{#- Match-key normalisation (docs/identity.md). Each macro renders a SQL expression over a text column. -#}

{#- The digits of a value, nothing else. -#}
{% macro digits_of(column) -%}
    {{ regexp_replace_all("coalesce(" ~ column ~ ", '')", "'[^0-9]'", "''") }}
{%- endmacro %}

{#- True when a text is one character repeated (00000000000, 99999999). -#}
{% macro is_one_repeated_character(text) -%}
    (length({{ text }}) > 0 and length(replace({{ text }}, left({{ text }}, 1), '')) = 0)
{%- endmacro %}

{#- Weighted digit sum: digits[1..n] * weights[1..n], written out term by term (a plain expression, which Spark
    compiles; a lambda over the positions it would interpret, row by row). -#}
{% macro weighted_digit_sum(digits, weights) -%}
    ({% for weight in weights -%}
        {{ ' + ' if not loop.first }}cast(substr({{ digits }}, {{ loop.index }}, 1) as integer) * {{ weight }}
    {%- endfor %})
{%- endmacro %}

{#- CPF check digits: both must match (mod 11, weights 10..2 then 11..2). -#}
{% macro cpf_check_digits_match(digits) -%}
    (
        ({{ weighted_digit_sum(digits, [10, 9, 8, 7, 6, 5, 4, 3, 2]) }} * 10 % 11) % 10
            = cast(substr({{ digits }}, 10, 1) as integer)
        and ({{ weighted_digit_sum(digits, [11, 10, 9, 8, 7, 6, 5, 4, 3, 2]) }} * 10 % 11) % 10
            = cast(substr({{ digits }}, 11, 1) as integer)
    )
{%- endmacro %}

{#- CNPJ check digits: remainder r of the weighted sum mod 11 gives 0 when r < 2, else 11 - r. -#}
{% macro cnpj_check_digit(digits, weights) -%}
    (case when {{ weighted_digit_sum(digits, weights) }} % 11 < 2 then 0
        else 11 - {{ weighted_digit_sum(digits, weights) }} % 11 end)
{%- endmacro %}

{% macro cnpj_check_digits_match(digits) -%}
    (
        {{ cnpj_check_digit(digits, [5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2]) }} = cast(substr({{ digits }}, 13, 1) as integer)
        and {{ cnpj_check_digit(digits, [6, 5, 4, 3, 2, 9, 8, 7, 6, 5, 4, 3, 2]) }}
            = cast(substr({{ digits }}, 14, 1) as integer)
    )
{%- endmacro %}

{#- A CPF/CNPJ as its digits, from the value's digits (digits_of): a CPF that lost its leading zeros (9 or 10
    digits, as spreadsheets write it) is padded back. -#}
{% macro document_digits(value_digits) -%}
    (case
        when length({{ value_digits }}) in (9, 10) then lpad({{ value_digits }}, 11, '0')
        else {{ value_digits }}
    end)
{%- endmacro %}

{#- Why a document is no key (null when it is a valid CPF or CNPJ, or absent), given the value and its
    document_digits (a column: the checks below read it many times). -#}
{% macro document_issue(column, digits) -%}
    (case
        when nullif(trim({{ column }}), '') is null then null
        when length({{ digits }}) not in (11, 14) then 'invalid_format'
        when {{ is_one_repeated_character(digits) }} then 'junk_value'
        when length({{ digits }}) = 11 and not {{ cpf_check_digits_match(digits) }} then 'failed_check_digits'
        when length({{ digits }}) = 14 and not {{ cnpj_check_digits_match(digits) }} then 'failed_check_digits'
    end)
{%- endmacro %}

{#- A phone in E.164. Numbers without a country code are Brazilian (+55): DDD (two digits, no zero) and a
    9-digit mobile (9xxxxxxxx) or 8-digit landline (2-5xxxxxxx); a leading trunk 0 and a carrier code
    (0 + 2 digits) are dropped. A number written with another country code (+1 …) is kept as it is.
    Null when the value is no usable phone (e.g. no area code). `digits`: a column holding digits_of(column). -#}
{% macro phone_e164(column, digits) -%}
    {%- set national -%}
        (case
            when left({{ digits }}, 2) = '55' and length({{ digits }}) in (12, 13) then substr({{ digits }}, 3)
            when left({{ digits }}, 1) = '0' and length({{ digits }}) in (11, 12) then substr({{ digits }}, 2)
            when left({{ digits }}, 1) = '0' and length({{ digits }}) in (13, 14) then substr({{ digits }}, 4)
            else {{ digits }}
        end)
    {%- endset -%}
    (case
        when left(trim({{ column }}), 1) = '+' and left({{ digits }}, 2) != '55'
            then case when length({{ digits }}) between 8 and 15 then '+' || {{ digits }} end
        when {{ matches_whole(national, "'[1-9][1-9](9[0-9]{8}|[2-5][0-9]{7})'") }}
            and not {{ is_one_repeated_character('right(' ~ national ~ ', 8)') }}
            then '+55' || {{ national }}
    end)
{%- endmacro %}

{#- An e-mail as written by its owner: trimmed, lower case; null unless it looks like an address. -#}
{% macro email_address(column) -%}
    (case
        when {{ matches_whole('lower(trim(' ~ column ~ '))', "'[a-z0-9._%+\-]+@[a-z0-9\-]+(\.[a-z0-9\-]+)*\.[a-z]{2,}'") }}
            then lower(trim({{ column }}))
    end)
{%- endmacro %}

{#- The words of a name without accents, in lower case, without the particles da/de/do/das/dos/e. -#}
{% macro name_tokens(column) -%}
    {%- set spaced = regexp_replace_all("trim(coalesce(" ~ column ~ ", ''))", "'\s+'", "' '") -%}
    filter(
        split(lower({{ strip_accents(spaced) }}), ' '),
        word -> word not in ('', 'da', 'de', 'do', 'das', 'dos', 'e')
    )
{%- endmacro %}

{#- The key of a source record across the identity models. -#}
{% macro record_key(source_system, source_customer_id) -%}
    {{ source_system }} || ':' || {{ source_customer_id }}
{%- endmacro %}

{#- True when a key value is on the block list (seed identity_blocklist): the whole value, or for e-mails
    its local part or its domain. Uncorrelated IN lists (the block list is the small side), not a correlated
    EXISTS, which DuckDB decorrelates by first collecting every distinct value checked: gigabytes at millions
    of records. -#}
{% macro is_blocklisted(key_type, value) -%}
    (
        {%- for match, part in [('exact', value), ('local_part', "split_part(" ~ value ~ ", '@', 1)"), ('domain', "split_part(" ~ value ~ ", '@', 2)")] %}
        {{ 'or ' if not loop.first }}{{ part }} in (
            select blocklist.value from {{ ref('identity_blocklist') }} as blocklist
            where blocklist.key_type = '{{ key_type }}' and blocklist.match = '{{ match }}'
        )
        {%- endfor %}
    )
{%- endmacro %}

{#- Each record's current customer id in the id ledger: its latest assignment. -#}
{% macro current_assignments(ledger) -%}
    select
        record_key,
        customer_id
    from {{ ledger }}
    qualify row_number() over (partition by record_key order by assigned_at desc) = 1
{%- endmacro %}

{#- The match-key types of int_identity_keys (its column names before the unpivot), in the order edges list
    them. -#}
{% macro identity_key_types() %}
    {{ return(['document', 'email', 'loyalty', 'phone', 'postal_code_surname']) }}
{% endmacro %}

{#- The records whose links may have changed in this build (one column, record_key): the records it changed,
    every record holding a key value one of them holds or gave up (that value's count of holders, so
    whether it is shared or blocked, may have changed), and both ends of the pairs this run's probabilistic
    pass linked (stamped with the pass's run_at; it rewrites the pairs of the records it compared). Every link
    that appeared or vanished has an end among them. -#}
{% macro records_with_changed_links() -%}
    {%- set probabilistic_links = source('identity', 'int_identity_probabilistic_links') -%}
    {%- set probabilistic_passes = source('identity', 'identity_probabilistic_state') -%}
    select changed_records.record_key
    from {{ changed_in_this_build(ref('int_customer_records'), ['record_key']) }} as changed_records
    union
    select holders.record_key
    from {{ ref('int_identity_keys') }} as holders
    semi join {{ changed_in_this_build(ref('int_identity_keys'), ['key_type', 'key_value']) }} as changed_keys
        on
            holders.key_type = changed_keys.key_type
            and holders.key_value = changed_keys.key_value
    where holders.is_current
    union
    select {{ unnested(list_of(['links.record_key', 'links.linked_record_key'])) }}
    from {{ probabilistic_links }} as links
    where links.decision = 'link' and links.linked_at = (select max(run_at) from {{ probabilistic_passes }})
{%- endmacro %}

{#- The customers (one column, customer_id) whose records this build re-clustered, and the ids those records
    held before (a retired id loses its rows); with `touched_by_facts`, also the customers of the records that
    got new facts. -#}
{% macro customers_changed_in_this_build(touched_by_facts=true) -%}
    select id_map.customer_id
    from {{ ref('customer_id_map') }} as id_map
    semi join (
        select changed_clusters.source_system, changed_clusters.source_customer_id
        from {{ changed_in_this_build(ref('int_identity_clusters'), ['source_system', 'source_customer_id']) }}
            as changed_clusters
        {%- if touched_by_facts %}
            union all
            select touched_records.source_system, touched_records.source_customer_id
            from {{ ref('int_customer_records') }} as touched_records
            where touched_records.touched_at = {{ build_started_at() }}
        {%- endif %}
    ) as changed_records
        on
            id_map.source_system = changed_records.source_system
            and id_map.source_customer_id = changed_records.source_customer_id
    union
    select ledger.previous_customer_id
    from {{ ref('int_customer_id_assignments') }} as ledger
    where ledger.assigned_at = {{ build_started_at() }} and ledger.previous_customer_id is not null
{%- endmacro %}

{#- A street address as a household key: upper case, no accents or punctuation, the usual abbreviations
    spelled out (R. -> RUA, AV. -> AVENIDA, TV. -> TRAVESSA, AL. -> ALAMEDA), the number's sign (Nº) dropped;
    null without a house number (a street alone is not an address). -#}
{% macro address_key(text) -%}
    {%- set cleaned = "trim(" ~ regexp_replace_all("upper(" ~ strip_accents(text) ~ ")", "'[^A-Z0-9]+'", "' '") ~ ")" -%}
    {%- set address = namespace(key=regexp_replace_all(cleaned, "' NO? (\d)'", "' \\1'")) -%}
    {%- for abbreviation, word in [('R', 'RUA'), ('AV', 'AVENIDA'), ('TV', 'TRAVESSA'), ('AL', 'ALAMEDA')] -%}
        {%- set address.key = regexp_replace_all(address.key, "'^" ~ abbreviation ~ " '", "'" ~ word ~ " '") -%}
    {%- endfor %}
    case when {{ matches_part(text, "'\d'") }} then nullif({{ address.key }}, '') end
{%- endmacro %}
