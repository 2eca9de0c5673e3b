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

{#- A staging model is built incrementally: a run rebuilds only the records (by `key_expressions` over the
    raw columns; required, so never null) that have a row loaded since the last build, from all their rows,
    so latest_version still sees every version; the config's unique_key (the same key, staged) replaces
    them (delete+insert). A first build, or dbt --full-refresh, reads everything. The source's rows are
    never deleted once dbt has read them (a file the raw gate rejects leaves raw before dbt runs), but for an
    erased person's (the erasure step deletes those everywhere). The rows belong to a source customer; those
    of an erased record are left out. -#}
{% macro delivered_since_last_build(relation, key_expressions) -%}
    select *
    from (
        select *
        from {{ relation }}
        {%- if is_incremental() %}
            where ({{ key_expressions | join(', ') }}) in (
                select {{ key_expressions | join(', ') }}
                from {{ relation }}
                where _loaded_at > (select max(loaded_at) from {{ this }})
            )
        {%- endif %}
    )
    where {{ not_erased('_source_system', 'trim(source_customer_id)') }}
{%- endmacro %}

{#- False for a row of a record an erasure erased (docs/privacy.md): its salted hash is a tombstone. The erasure
    removes such rows from raw as they load; this keeps a re-delivered row out even when dbt runs alone. While no
    one is erased DuckDB hashes nothing (an anti-join with an empty side); then about 0.2 s per million rows. -#}
{% macro not_erased(source_system, source_customer_id) -%}
    coalesce(raw.erasure_hash('record', {{ source_system }} || ':' || {{ source_customer_id }}), '') not in (
        select key_hash from {{ source('erasure', '_erasure_tombstones') }} where key_kind = 'record'
    )
{%- endmacro %}
