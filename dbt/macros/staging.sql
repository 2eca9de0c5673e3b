{#- Lineage every staging model keeps from its raw row. -#}
{% macro lineage_columns() -%}
    _source_file as source_file,
        _row_number as source_row_number,
        _loaded_at as loaded_at
{%- endmacro %}

{#- A record delivered more than once (a newer extract, a corrected file) counts once: its latest version,
    by `newest_first` if given, then the latest load, file and row. -#}
{% macro latest_version(relation, key_columns, newest_first=none) -%}
    select *
    from {{ relation }}
    qualify row_number() over (
        partition by {{ key_columns | join(', ') }}
        order by {% if newest_first %}{{ newest_first }}, {% endif %}loaded_at desc, source_file desc, source_row_number desc
    ) = 1
{%- endmacro %}
