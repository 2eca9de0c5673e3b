{#- A delivered code reduced to a lookup key: accents stripped, lower case, runs of other characters as
    one underscore ("E-mail" -> e_mail, "Loja Própria" -> loja_propria). -#}
{% macro vocabulary_key(column) -%}
    {%- set words = regexp_replace_all('lower(' ~ strip_accents('trim(' ~ column ~ ')') ~ ')', "'[^a-z0-9]+'", "'_'") -%}
    {{ regexp_replace_all(words, "'^_+|_+$'", "''") }}
{%- endmacro %}

{#- The canonical value of a delivered code in a vocabulary domain (seed `vocabulary`); NULL when the
    code is unknown, which the `mapped_to_vocabulary` test reports. -#}
{% macro canonical_value(domain, column) -%}
    (
        select vocabulary.canonical_value
        from {{ ref('vocabulary') }} as vocabulary
        where vocabulary.domain = '{{ domain }}'
            and vocabulary.source_value = {{ vocabulary_key(column) }}
    )
{%- endmacro %}
