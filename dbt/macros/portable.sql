{#- SQL that DuckDB and Spark write differently, one macro each (adapter.dispatch: duckdb__ / spark__), so every
    model reads the same on both engines (docs/spark.md). DuckDB's branch is what the models always ran. -#}

{#- `text` without accents. Spark has no Unicode normaliser in SQL: it maps the accented Latin letters (those of
    Portuguese, Spanish, French, German, Italian), which are what the sources deliver. -#}
{% macro strip_accents(text) -%}
    {{ return(adapter.dispatch('strip_accents')(text)) }}
{%- endmacro %}

{% macro duckdb__strip_accents(text) -%}
    strip_accents({{ text }})
{%- endmacro %}

{% macro spark__strip_accents(text) -%}
    translate({{ text }}, 'ÀÁÂÃÄÅÇÈÉÊËÌÍÎÏÑÒÓÔÕÖÙÚÛÜÝàáâãäåçèéêëìíîïñòóôõöùúûüýÿ', 'AAAAAACEEEEIIIINOOOOOUUUUYaaaaaaceeeeiiiinooooouuuuyy')
{%- endmacro %}

{#- Every match of the regular expression `pattern` in `text` replaced (`pattern` and `replacement` are SQL
    literals; a group in the replacement is written \1, as DuckDB writes it). -#}
{% macro regexp_replace_all(text, pattern, replacement) -%}
    {{ return(adapter.dispatch('regexp_replace_all')(text, pattern, replacement)) }}
{%- endmacro %}

{% macro duckdb__regexp_replace_all(text, pattern, replacement) -%}
    regexp_replace({{ text }}, {{ pattern }}, {{ replacement }}, 'g')
{%- endmacro %}

{% macro spark__regexp_replace_all(text, pattern, replacement) -%}
    regexp_replace({{ text }}, {{ pattern }}, {{ replacement | replace('\\', '$') }})
{%- endmacro %}

{#- True when the whole of `text` matches the regular expression `pattern` (an SQL literal). -#}
{% macro matches_whole(text, pattern) -%}
    {{ return(adapter.dispatch('matches_whole')(text, pattern)) }}
{%- endmacro %}

{% macro duckdb__matches_whole(text, pattern) -%}
    regexp_full_match({{ text }}, {{ pattern }})
{%- endmacro %}

{% macro spark__matches_whole(text, pattern) -%}
    regexp_like({{ text }}, '^(?:' || {{ pattern }} || ')$')
{%- endmacro %}

{#- True when `text` holds a match of the regular expression `pattern` (an SQL literal). -#}
{% macro matches_part(text, pattern) -%}
    {{ return(adapter.dispatch('matches_part')(text, pattern)) }}
{%- endmacro %}

{% macro duckdb__matches_part(text, pattern) -%}
    regexp_matches({{ text }}, {{ pattern }})
{%- endmacro %}

{% macro spark__matches_part(text, pattern) -%}
    regexp_like({{ text }}, {{ pattern }})
{%- endmacro %}

{#- Lists. A lambda is written `x -> expression`, which both engines read (Spark interprets it row by row: keep
    lambdas off the large tables). -#}

{#- The number of elements of a list. -#}
{% macro list_size(list) -%}
    {{ return(adapter.dispatch('list_size')(list)) }}
{%- endmacro %}

{% macro duckdb__list_size(list) -%}
    len({{ list }})
{%- endmacro %}

{% macro spark__list_size(list) -%}
    cast(size({{ list }}) as bigint)
{%- endmacro %}

{#- The element at a 1-based position (negative: from the end); null past the end. -#}
{% macro list_at(list, position) -%}
    {{ return(adapter.dispatch('list_at')(list, position)) }}
{%- endmacro %}

{% macro duckdb__list_at(list, position) -%}
    ({{ list }})[{{ position }}]
{%- endmacro %}

{% macro spark__list_at(list, position) -%}
    try_element_at({{ list }}, {{ position }})
{%- endmacro %}

{#- A list of the SQL expressions `elements` (a Jinja list). -#}
{% macro list_of(elements) -%}
    {{ return(adapter.dispatch('list_of')(elements)) }}
{%- endmacro %}

{% macro duckdb__list_of(elements) -%}
    [{{ elements | join(', ') }}]
{%- endmacro %}

{% macro spark__list_of(elements) -%}
    array({{ elements | join(', ') }})
{%- endmacro %}

{#- One row per element of a list (in a select list). -#}
{% macro unnested(list) -%}
    {{ return(adapter.dispatch('unnested')(list)) }}
{%- endmacro %}

{% macro duckdb__unnested(list) -%}
    unnest({{ list }})
{%- endmacro %}

{% macro spark__unnested(list) -%}
    explode({{ list }})
{%- endmacro %}

{#- The elements of a list of texts joined by `separator` (a SQL text literal). -#}
{% macro list_text(list, separator) -%}
    {{ return(adapter.dispatch('list_text')(list, separator)) }}
{%- endmacro %}

{% macro duckdb__list_text(list, separator) -%}
    array_to_string({{ list }}, {{ separator }})
{%- endmacro %}

{% macro spark__list_text(list, separator) -%}
    array_join({{ list }}, {{ separator }})
{%- endmacro %}

{#- Aggregate: the values of `expression` in a sorted list (`distinct`: each once; `condition`: of the rows where
    it holds). -#}
{% macro sorted_list(expression, distinct=false, condition=none) -%}
    {{ return(adapter.dispatch('sorted_list')(expression, distinct, condition)) }}
{%- endmacro %}

{% macro duckdb__sorted_list(expression, distinct, condition) -%}
    list({{ 'distinct ' if distinct }}{{ expression }} order by {{ expression }})
    {%- if condition %} filter (where {{ condition }}){% endif %}
{%- endmacro %}

{% macro spark__sorted_list(expression, distinct, condition) -%}
    array_sort(collect_{{ 'set' if distinct else 'list' }}({{ expression }})
    {%- if condition %} filter (where {{ condition }}){% endif %})
{%- endmacro %}

{#- Aggregate: the distinct values of `expression`, sorted, joined by `separator` (an SQL literal). -#}
{% macro sorted_text(expression, separator) -%}
    {{ return(adapter.dispatch('sorted_text')(expression, separator)) }}
{%- endmacro %}

{% macro duckdb__sorted_text(expression, separator) -%}
    string_agg(distinct {{ expression }}, {{ separator }} order by {{ expression }})
{%- endmacro %}

{% macro spark__sorted_text(expression, separator) -%}
    array_join(array_sort(collect_set({{ expression }})), {{ separator }})
{%- endmacro %}

{#- Aggregate: the continuous quantiles (linear interpolation) of `expression` at `fractions` (a Jinja list). -#}
{% macro quantiles(expression, fractions) -%}
    {{ return(adapter.dispatch('quantiles')(expression, fractions)) }}
{%- endmacro %}

{% macro duckdb__quantiles(expression, fractions) -%}
    quantile_cont({{ expression }}, {{ fractions }})
{%- endmacro %}

{% macro spark__quantiles(expression, fractions) -%}
    percentile({{ expression }}, array({{ fractions | join(', ') }}))
{%- endmacro %}

{#- A struct of named fields (`fields`: a list of (name, SQL expression) pairs); compared field by field. -#}
{% macro struct_of(fields) -%}
    {{ return(adapter.dispatch('struct_of')(fields)) }}
{%- endmacro %}

{% macro duckdb__struct_of(fields) -%}
    { {%- for name, expression in fields %}'{{ name }}': {{ expression }}{{ ', ' if not loop.last }}{% endfor -%} }
{%- endmacro %}

{% macro spark__struct_of(fields) -%}
    named_struct({%- for name, expression in fields %}'{{ name }}', {{ expression }}{{ ', ' if not loop.last }}{% endfor -%})
{%- endmacro %}

{#- Every column of `relation_alias` but `columns` (a Jinja list), in a select list. -#}
{% macro star_except(relation_alias, columns) -%}
    {{ return(adapter.dispatch('star_except')(relation_alias, columns)) }}
{%- endmacro %}

{% macro duckdb__star_except(relation_alias, columns) -%}
    {{ relation_alias }}.* exclude ({{ columns | join(', ') }})
{%- endmacro %}

{% macro spark__star_except(relation_alias, columns) -%}
    {{ relation_alias }}.* except ({{ columns | join(', ') }})
{%- endmacro %}

{#- A number as text with `decimals` decimals, rounded half away from zero (through a decimal: printf's %.Nf
    rounds ties to even in DuckDB and away from zero in Java, so the engines would write 1.25 differently). -#}
{% macro number_text(value, decimals) -%}
    cast(cast({{ value }} as decimal(38, {{ decimals }})) as string)
{%- endmacro %}

{#- A deterministic bucket 0 .. buckets - 1 of a text: the first 8 bytes of its MD5 (little-endian) modulo
    `buckets`, the same number on both engines. -#}
{% macro md5_bucket(text, buckets) -%}
    {{ return(adapter.dispatch('md5_bucket')(text, buckets)) }}
{%- endmacro %}

{% macro duckdb__md5_bucket(text, buckets) -%}
    (md5_number_upper({{ text }}) % {{ buckets }})
{%- endmacro %}

{% macro spark__md5_bucket(text, buckets) -%}
    cast(cast(conv(
        {%- for byte in range(7, -1, -1) %}{{ ' || ' if not loop.first }}substr(md5({{ text }}), {{ 2 * byte + 1 }}, 2){% endfor -%}
    , 16, 10) as decimal(20, 0)) % {{ buckets }} as bigint)
{%- endmacro %}

{#- A CTE read more than once, inlined rather than copied (DuckDB 1.4 copies a CTE read twice, every column
    of it, into memory; Spark inlines CTEs). -#}
{% macro inlined() -%}
    {{ return(adapter.dispatch('inlined')()) }}
{%- endmacro %}

{% macro duckdb__inlined() -%}
    not materialized
{%- endmacro %}

{% macro spark__inlined() -%}
{%- endmacro %}

{#- A CTE computed once and kept (DuckDB), where the optimiser would otherwise join in a costly order; Spark
    plans a CTE read once as it is. -#}
{% macro materialized() -%}
    {{ return(adapter.dispatch('materialized')()) }}
{%- endmacro %}

{% macro duckdb__materialized() -%}
    materialized
{%- endmacro %}

{% macro spark__materialized() -%}
{%- endmacro %}

{#- Jaro-Winkler similarity of two texts (0..1; prefix scale 0.1 over at most 4 characters). -#}
{% macro jaro_winkler(text, other) -%}
    {{ return(adapter.dispatch('jaro_winkler')(text, other)) }}
{%- endmacro %}

{% macro duckdb__jaro_winkler(text, other) -%}
    jaro_winkler_similarity({{ text }}, {{ other }})
{%- endmacro %}

{#- Spark has no Jaro-Winkler: the algorithm inline (interpreted by Spark, so the identity graph compares each
    distinct pair of words once), a value bound to a name by transform(array(value), name -> ...)[0]. The
    characters of `a` matched in order (each to the first unmatched equal character of `b` within the window),
    then the matched characters of `b` in order; Jaro from the matches and half the positions where the two
    orders differ, rounded down; Winkler's bonus (0.1 per common leading character, at most 4) when Jaro exceeds 0.7, as
    DuckDB computes it. -#}
{% macro spark__jaro_winkler(a, b) -%}
    (case when length({{ a }}) = 0 or length({{ b }}) = 0 then 0.0 else get(transform(
        array(aggregate(
            sequence(1, length({{ a }})),
            named_struct('flags', array_repeat(false, length({{ b }})), 'chars', ''),
            (jw_state, jw_i) -> coalesce(
                get(transform(
                    filter(
                        array(array_min(filter(sequence(1, length({{ b }})), jw_j ->
                            abs(jw_j - jw_i) <= greatest(greatest(length({{ a }}), length({{ b }})) div 2 - 1, 0)
                            and not element_at(jw_state.flags, jw_j)
                            and substr({{ b }}, jw_j, 1) = substr({{ a }}, jw_i, 1)))),
                        jw_j -> jw_j is not null),
                    jw_j -> named_struct(
                        'flags', transform(jw_state.flags, (jw_flag, jw_k) -> jw_flag or jw_k + 1 = jw_j),
                        'chars', jw_state.chars || substr({{ a }}, jw_i, 1))
                ), 0),
                jw_state)
        )),
        jw_match -> get(transform(
            array(case when length(jw_match.chars) = 0 then 0.0 else (
                length(jw_match.chars) / length({{ a }}) + length(jw_match.chars) / length({{ b }})
                + (length(jw_match.chars) - size(filter(
                    sequence(1, length(jw_match.chars)),
                    jw_p -> substr(jw_match.chars, jw_p, 1) != substr(array_join(transform(
                        filter(sequence(1, length({{ b }})), jw_k -> element_at(jw_match.flags, jw_k)),
                        jw_k -> substr({{ b }}, jw_k, 1)), ''), jw_p, 1)
                )) div 2) / length(jw_match.chars)
            ) / 3 end),
            jw_jaro -> case when jw_jaro > 0.7 then jw_jaro + 0.1 * coalesce(
                array_min(filter(
                    sequence(1, least(4, length({{ a }}), length({{ b }}))),
                    jw_p -> substr({{ a }}, jw_p, 1) != substr({{ b }}, jw_p, 1))) - 1,
                least(4, length({{ a }}), length({{ b }}))
            ) * (1 - jw_jaro) else jw_jaro end
        ), 0)
    ), 0) end)
{%- endmacro %}

{#- The model's rows (CTE `final`) and, in an incremental build, one row per member of CTE `scope` with only
    `key` set: the scope of the replace_scope strategy (dbt/macros/incremental_scope.sql). -#}
{% macro final_with_scope_rows(key) -%}
    {{ return(adapter.dispatch('final_with_scope_rows')(key)) }}
{%- endmacro %}

{% macro duckdb__final_with_scope_rows(key) -%}
    select * from final
    {%- if is_incremental() %}
        union all by name
        select {{ key }} from scope
    {%- endif %}
{%- endmacro %}

{#- Spark has no `union by name`: the table's columns, null but the key (an incremental build runs the same
    code as the table's first build, so the model's columns are the table's). -#}
{% macro spark__final_with_scope_rows(key) -%}
    {%- if is_incremental() and execute -%}
        {%- set columns = adapter.get_columns_in_relation(this) | map(attribute='name') | list -%}
        select {{ columns | join(', ') }} from final
        union all
        select {% for column in columns %}{{ column if column == key else 'null' }} as {{ column }}{{ ', ' if not loop.last }}{% endfor %}
        from scope
    {%- else -%}
        select * from final
    {%- endif -%}
{%- endmacro %}

{#- The rows of the query in the call block with `columns` turned into rows: one per non-null value, named in
    column `name`, the value in column `value`. -#}
{% macro unpivoted(columns, name, value) -%}
    {{ return(adapter.dispatch('unpivoted')(caller(), columns, name, value)) }}
{%- endmacro %}

{% macro duckdb__unpivoted(query, columns, name, value) -%}
    unpivot ({{ query }})
    on {{ columns | join(', ') }}
    into name {{ name }} value {{ value }}
{%- endmacro %}

{% macro spark__unpivoted(query, columns, name, value) -%}
    select * from ({{ query }})
    unpivot ({{ value }} for {{ name }} in ({{ columns | join(', ') }}))
{%- endmacro %}

{#- A statement (a post-hook) deleting the rows of `relation` where `condition` holds. On Spark's Parquet
    tables: the other rows into a table, which then overwrites the relation. -#}
{% macro delete_where(relation, condition) -%}
    {{ return(adapter.dispatch('delete_where')(relation, condition)) }}
{%- endmacro %}

{% macro duckdb__delete_where(relation, condition) -%}
    delete from {{ relation }} where {{ condition }}
{%- endmacro %}

{% macro spark__delete_where(relation, condition) -%}
    {%- if execute -%}
        {%- set kept = relation.incorporate(path={'identifier': relation.identifier ~ '__dbt_kept'}) -%}
        {%- do run_query('drop table if exists ' ~ kept) -%}
        {%- do run_query('create table ' ~ kept ~ ' using parquet as select * from ' ~ relation ~ ' where not coalesce(' ~ condition ~ ', false)') -%}
        {%- do run_query('insert overwrite table ' ~ relation ~ ' select * from ' ~ kept) -%}
        drop table {{ kept }}
    {%- endif -%}
{%- endmacro %}


{#- Whole days from the date `earlier` to the date `later` (an integer). -#}
{% macro days_between(earlier, later) -%}
    {{ return(adapter.dispatch('days_between')(earlier, later)) }}
{%- endmacro %}

{% macro duckdb__days_between(earlier, later) -%}
    ({{ later }} - {{ earlier }})
{%- endmacro %}

{% macro spark__days_between(earlier, later) -%}
    cast(datediff({{ later }}, {{ earlier }}) as bigint)
{%- endmacro %}

{#- The standard normal distribution function Φ(x), for p-values. DuckDB: normal_cdf from the dbt-duckdb plugin
    dagster_project/lib/sql_functions.py (Python's erfc). Spark: erfc of Apache Commons Math, which Spark ships
    (its jars hold commons-math3), called by java_method; its text is the double's shortest exact form. -#}
{% macro normal_cdf(x) -%}
    {{ return(adapter.dispatch('normal_cdf')(x)) }}
{%- endmacro %}

{% macro duckdb__normal_cdf(x) -%}
    normal_cdf({{ x }})
{%- endmacro %}

{% macro spark__normal_cdf(x) -%}
    (0.5 * cast(java_method('org.apache.commons.math3.special.Erf', 'erfc', cast(-({{ x }}) / sqrt(2) as double)) as double))
{%- endmacro %}

{#- `text` as a string literal. Spark reads string literals as written (the session sets
    spark.sql.parser.escapedStringLiterals, so regular expressions read alike on both engines): a text holding
    a single quote goes between double quotes there. -#}
{% macro text_literal(text) -%}
    {{ return(adapter.dispatch('text_literal')(text)) }}
{%- endmacro %}

{% macro duckdb__text_literal(text) -%}
    '{{ text | replace("'", "''") }}'
{%- endmacro %}

{% macro spark__text_literal(text) -%}
    {{ spark_literal(text) }}
{%- endmacro %}
