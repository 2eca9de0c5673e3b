{#- Fixes of dbt-spark 1.11 that this project needs (target spark, docs/spark.md). -#}

{#- Seeds as literals: dbt-spark's session method pastes string bindings between quotes unescaped (a segment
    named "Can't lose them" breaks the statement) and writes an empty cell as the string 'None'. -#}
{% macro spark__load_csv_rows(model, agate_table) %}
    {%- set column_override = model['config'].get('column_types', {}) -%}
    {%- set statements = [] -%}
    {%- for chunk in agate_table.rows | batch(get_batch_size()) -%}
        {%- set sql -%}
            insert into {{ this.render() }} values
            {%- for row in chunk %}
                (
                {%- for value in row -%}
                    {%- set type = column_override.get(agate_table.column_names[loop.index0], adapter.convert_type(agate_table, loop.index0)) -%}
                    cast({{ spark_literal(value) }} as {{ type }}){{ ',' if not loop.last }}
                {%- endfor -%}
                ){{ ',' if not loop.last }}
            {%- endfor %}
        {%- endset -%}
        {%- do adapter.add_query(sql, abridge_sql_log=True) -%}
        {%- if loop.first %}{% do statements.append(sql) %}{% endif -%}
    {%- endfor -%}
    {{ return(statements[0] if statements else '') }}
{% endmacro %}

{#- A seed cell as a Spark SQL literal. String literals are read as written (the session sets
    spark.sql.parser.escapedStringLiterals, as DuckDB reads them): a value holding a single quote goes between
    double quotes, one holding both kinds is joined from pieces. -#}
{% macro spark_literal(value) -%}
    {%- set text = value | string -%}
    {%- if value is none -%}
        null
    {%- elif "'" not in text -%}
        '{{ text }}'
    {%- elif '"' not in text -%}
        "{{ text }}"
    {%- else -%}
        concat('{{ text.split("'") | join("', chr(39), '") }}')
    {%- endif -%}
{%- endmacro %}

{#- The project's incremental strategies on Spark's Parquet tables, which cannot delete rows (no Delta or
    Iceberg offline). The model's rows are computed into a table first (they may read the model's own table).
    `append` inserts them. `delete+insert` (on unique_key) and `replace_scope` (dbt/macros/incremental_scope.sql)
    compute the table's new contents (its rows the batch does not replace, and the batch's rows) into a second
    table, which then overwrites the table: nothing is replaced until the new contents are complete. The
    models still compute only what changed; the table is rewritten. -#}
{% macro dbt_spark_validate_get_incremental_strategy(raw_strategy, file_format) %}
    {%- if raw_strategy not in ['append', 'delete+insert', 'replace_scope'] -%}
        {% do exceptions.raise_compiler_error('incremental strategy ' ~ raw_strategy ~ ' is not implemented on Spark (dbt/macros/spark.sql)') %}
    {%- endif -%}
    {{ return(raw_strategy) }}
{% endmacro %}

{% macro dbt_spark_get_incremental_sql(strategy, source, target, existing, unique_key, incremental_predicates) %}
    {%- set batch = target.incorporate(path={'identifier': target.identifier ~ '__dbt_batch'}) -%}
    {%- set rewritten = target.incorporate(path={'identifier': target.identifier ~ '__dbt_rewritten'}) -%}
    {%- set columns = get_quoted_csv(adapter.get_columns_in_relation(target) | map(attribute='name')) -%}
    {%- do run_query('drop table if exists ' ~ batch) -%}
    {%- do run_query('drop table if exists ' ~ rewritten) -%}
    {%- do run_query('create table ' ~ batch ~ ' using parquet as select * from ' ~ source) -%}
    {%- if strategy == 'append' -%}
        {%- do run_query('insert into ' ~ target ~ ' select ' ~ columns ~ ' from ' ~ batch) -%}
        {{ return('drop table ' ~ batch) }}
    {%- elif strategy == 'delete+insert' -%}
        {%- set keys = [unique_key] if unique_key is string else unique_key -%}
        {%- set kept -%}
            select {{ columns }} from {{ target }} as kept
            left anti join {{ batch }} as replacing
                on {% for key in keys %}{{ 'and ' if not loop.first }}kept.{{ key }} = replacing.{{ key }} {% endfor %}
        {%- endset -%}
        {%- set added = 'select ' ~ columns ~ ' from ' ~ batch -%}
    {%- else -%}
        {%- set scope_key = config.require('scope_key') -%}
        {%- set marker = config.require('scope_marker') -%}
        {%- set kept -%}
            select {{ columns }} from {{ target }} as kept
            {%- for column in config.get('scope_columns', [scope_key]) %}
                left anti join (select {{ scope_key }} from {{ batch }} where {{ marker }} is null) as scope_{{ loop.index }}
                    on kept.{{ column }} = scope_{{ loop.index }}.{{ scope_key }}
            {%- endfor %}
        {%- endset -%}
        {%- set added = 'select ' ~ columns ~ ' from ' ~ batch ~ ' where ' ~ marker ~ ' is not null' -%}
    {%- endif -%}
    {%- do run_query('create table ' ~ rewritten ~ ' using parquet as ' ~ kept ~ ' union all ' ~ added) -%}
    {%- do run_query('insert overwrite table ' ~ target ~ ' select ' ~ columns ~ ' from ' ~ rewritten) -%}
    {%- do run_query('drop table ' ~ rewritten) -%}
    {{ return('drop table ' ~ batch) }}
{% endmacro %}
