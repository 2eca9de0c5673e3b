{#- Incremental strategy `replace_scope`: an incremental run recomputes a scope (a set of records, of customers)
    whole: it deletes every row of the scope, then inserts the scope's new rows. The model returns the
    scope's new rows and one scope row per member: the member in column config `scope_key`, every other column
    null (`union all by name` with a one-column select; config `scope_marker` names a column never null in a
    real row). A row is in the scope when any of config `scope_columns` (default: the scope key) holds a
    member, so a pair table loses the pairs on either side. Unlike delete+insert, a member left without rows
    (a record that lost every link, a retired customer id) loses its old rows too. A first build or
    --full-refresh builds the table from the model's rows (no scope rows then). -#}
{% macro get_incremental_replace_scope_sql(arg_dict) -%}
    {%- set target = arg_dict['target_relation'] -%}
    {%- set batch = arg_dict['temp_relation'] -%}
    {%- set scope_key = config.require('scope_key') -%}
    {%- set marker = config.require('scope_marker') -%}
    {%- set columns = get_quoted_csv(arg_dict['dest_columns'] | map(attribute='name')) %}
    delete from {{ target }}
    where
        {%- for column in config.get('scope_columns', [scope_key]) %}
            {{ 'or ' if not loop.first }}{{ column }} in (select {{ scope_key }} from {{ batch }} where {{ marker }} is null)
        {%- endfor %};

    insert into {{ target }} ({{ columns }})
    select {{ columns }}
    from {{ batch }}
    where {{ marker }} is not null
{%- endmacro %}

{#- When this dbt invocation started: stamps the rows a build changes, so later models of the same build find
    them. -#}
{% macro build_started_at() -%}
    '{{ run_started_at.strftime("%Y-%m-%d %H:%M:%S.%f") }}'::timestamp
{%- endmacro %}

{#- In an incremental build, only the staged rows loaded since the model's last build (its latest staged_at). -#}
{% macro staged_since_last_build() -%}
    {%- if is_incremental() %}
        where loaded_at > (select max(staged_at) from {{ this }})
    {%- endif %}
{%- endmacro %}

{#- The rows of `relation` this build changed (stamped changed_at = build_started_at()), as a derived table of
    `columns`. A filter of its own: in a semi join's ON clause DuckDB would test it pair by pair. -#}
{% macro changed_in_this_build(relation, columns) -%}
    (select {{ columns | join(', ') }} from {{ relation }} where changed_at = {{ build_started_at() }})
{%- endmacro %}

{#- A filter on the staged facts `facts` (an alias) for an incremental fact table: the facts loaded since its
    newest row, those of the records whose cluster this build recomputed (their customer id may have changed),
    and those whose `reference` row (a relation in scope, e.g. the catalogue entry, joined on `reference_keys`)
    was loaded since. The table's loaded_at is the latest load among a row's inputs. -#}
{% macro facts_to_rebuild(facts, reference=none, reference_keys=[]) -%}
    {%- if is_incremental() %}
        where
            {{ facts }}.loaded_at > (select max(loaded_at) from {{ this }})
            or ({{ facts }}.source_system, {{ facts }}.source_customer_id) in (
                select changed_clusters.source_system, changed_clusters.source_customer_id
                from {{ changed_in_this_build(ref('int_identity_clusters'), ['source_system', 'source_customer_id']) }}
                    as changed_clusters
            )
            {%- if reference %}
                or ({{ facts }}.{{ reference_keys | join(', ' ~ facts ~ '.') }}) in (
                    select {{ reference }}.{{ reference_keys | join(', ' ~ reference ~ '.') }}
                    from {{ reference }}
                    where {{ reference }}.loaded_at > (select max(loaded_at) from {{ this }})
                )
            {%- endif %}
    {%- endif %}
{%- endmacro %}

{#- The rows of `relation` (as `alias`) whose `key` is in the model's CTE `scope` in an incremental build; every
    row in a full one. -#}
{% macro rows_in_scope(relation, alias, key='customer_id') -%}
    select {{ alias }}.*
    from {{ relation }} as {{ alias }}
    {%- if is_incremental() %}
        semi join scope on {{ alias }}.{{ key }} = scope.{{ key }}
    {%- endif %}
{%- endmacro %}
