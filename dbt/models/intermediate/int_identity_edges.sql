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

key_pairs as {{ inlined() }} (
    select
        pairing_keys.record_key,
        linked_keys.record_key as linked_record_key,
        pairing_keys.key_type,
        pairing_keys.needs_compatible_names,
        -- Names as text (words have no spaces): texts join and group faster than lists.
        {{ list_text('pairing_keys.name_tokens', "' '") }} as name,
        {{ list_text('linked_keys.name_tokens', "' '") }} as linked_name,
        least({{ list_size('pairing_keys.name_tokens') }}, {{ list_size('linked_keys.name_tokens') }}) as fewest_words
    from pairing_keys
    inner join usable_keys as linked_keys
        on
            pairing_keys.key_type = linked_keys.key_type
            and pairing_keys.key_value = linked_keys.key_value
            and pairing_keys.record_key != linked_keys.record_key
),

weak_key_pairs as {{ inlined() }} (
    -- A weak key (phone, CEP + surname) links two records only if their names may be one person's
    -- (docs/identity.md): at least two words each, and equal, or every word of the shorter name close to a
    -- word of the other (compatible_names).
    select * from key_pairs
    where needs_compatible_names and fewest_words >= 2
),

-- Compatible names: every word of the shorter name is close to a word of the other (Jaro-Winkler >= 0.88),
-- so a dropped middle name or a typo still matches, while two people of one household (Maria Clara / Maria
-- Eduarda Nogueira) do not; of two names of as many words, every word of each is close to a word of the other,
-- so the test is symmetric, as the graph's links must be (Ana Ana Souza and Ana Paula Souza are not compatible
-- either way). Each distinct pair of names, and each distinct pair of words, is compared once, not once per
-- pair of records (at 1,000,000 customers: 3.6 million pairs of records with different names, 0.85 million
-- distinct pairs of names, 0.46 million distinct pairs of words).
compared_names as (
    select distinct
        name,
        linked_name
    from weak_key_pairs
    where name != linked_name
),

name_sides as (
    -- The side(s) whose every word must be close to a word of the other: the shorter name, or both.
    select
        name,
        linked_name,
        'name' as side,
        split(name, ' ') as words,
        split(linked_name, ' ') as other_words
    from compared_names
    union all
    select
        name,
        linked_name,
        'linked' as side,
        split(linked_name, ' ') as words,
        split(name, ' ') as other_words
    from compared_names
),

side_words as (
    select
        name,
        linked_name,
        side,
        {{ unnested('words') }} as word,
        other_words
    from name_sides
    where {{ list_size('words') }} <= {{ list_size('other_words') }}
),

side_word_pairs as {{ inlined() }} (
    select
        name,
        linked_name,
        side,
        word,
        {{ unnested('other_words') }} as other_word
    from side_words
),

close_words as (
    select
        word,
        other_word
    from (select distinct word, other_word from side_word_pairs) as word_pairs
    where {{ jaro_winkler('word', 'other_word') }} >= 0.88
),

words_with_a_close_word as (
    select
        side_word_pairs.name,
        side_word_pairs.linked_name,
        side_word_pairs.side,
        side_word_pairs.word,
        bool_or(close_words.word is not null) as has_close_word
    from side_word_pairs
    left join close_words
        on
            side_word_pairs.word = close_words.word
            and side_word_pairs.other_word = close_words.other_word
    group by side_word_pairs.name, side_word_pairs.linked_name, side_word_pairs.side, side_word_pairs.word
),

compatible_names as (
    select
        name,
        linked_name
    from words_with_a_close_word
    group by name, linked_name
    having bool_and(has_close_word)
),

pairs as (
    select
        record_key,
        linked_record_key,
        key_type
    from key_pairs
    where not needs_compatible_names
    union all
    select
        weak_key_pairs.record_key,
        weak_key_pairs.linked_record_key,
        weak_key_pairs.key_type
    from weak_key_pairs
    left join compatible_names
        on
            weak_key_pairs.name = compatible_names.name
            and weak_key_pairs.linked_name = compatible_names.linked_name
    where weak_key_pairs.name = weak_key_pairs.linked_name or compatible_names.name is not null
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
