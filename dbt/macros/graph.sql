{#- The connected components of an undirected graph: one row per node of `nodes` (its column `node`) with
    `component` (the smallest node it reaches through `edges`, whose columns `from_node` -> `to_node` hold each
    link in both directions) and `component_size`. Used as the body of a CTE of a model whose WITH clause
    `graph` (the text of its CTEs up to this one) defines `nodes` and `edges`; a model that uses it runs
    `connected_components_cleanup()` as a post-hook. -#}
{% macro connected_components(graph, nodes, node, edges, from_node, to_node) -%}
    {{ return(adapter.dispatch('connected_components')(graph, nodes, node, edges, from_node, to_node)) }}
{%- endmacro %}

{#- DuckDB: a transitive closure by recursive CTE, fine for small components (people, households), not for one
    giant one. -#}
{% macro duckdb__connected_components(graph, nodes, node, edges, from_node, to_node) -%}
    with recursive reachable (node, reachable_node) as (
        select distinct
            {{ node }} as node,
            {{ node }} as reachable_node
        from {{ nodes }}
        union
        select
            reachable.node,
            {{ edges }}.{{ to_node }}
        from reachable
        inner join {{ edges }} on reachable.reachable_node = {{ edges }}.{{ from_node }}
    )

    select
        node,
        min(reachable_node) as component,
        count(*) as component_size
    from reachable
    group by node
{%- endmacro %}

{#- Spark: its recursive CTEs take neither UNION nor aggregates, and it inlines a CTE read twice (so rounds of
    one query grow exponentially), so the rounds run before the model's query, each into a table: the links
    (`<model>__links`), then labels (`<model>__labels_0` / `_1`, in turn), starting with each node its own label.
    A round gives each node the smallest label among its own and its neighbours', then the label of its label
    (pointer jumping, so a chain of n links settles in about log2(n) rounds rather than n). Labels only fall and
    stay in the component, so once no link joins two labels each component holds one: its smallest node. More
    than `max_rounds` rounds fails the build rather than split a component. -#}
{% macro spark__connected_components(graph, nodes, node, edges, from_node, to_node, max_rounds=64) -%}
    {%- set tables = connected_components_tables() -%}
    {%- set state = namespace(labels=tables.labels[0], settled=not execute) -%}
    {%- if execute -%}
        {%- do connected_components_cleanup() -%}
        {%- do run_query('create table ' ~ tables.links ~ ' using parquet as ' ~ graph
            ~ ' select ' ~ from_node ~ ' as from_node, ' ~ to_node ~ ' as to_node from ' ~ edges) -%}
        {%- do run_query('create table ' ~ state.labels ~ ' using parquet as ' ~ graph
            ~ ' select distinct ' ~ node ~ ' as node, ' ~ node ~ ' as label from ' ~ nodes) -%}
        {%- set state.settled = links_joining_two_labels(tables.links, state.labels) == 0 -%}
    {%- endif -%}
    {%- for round in range(1, max_rounds + 1) -%}
    {%- if not state.settled -%}
        {%- set labels = tables.labels[round % 2] -%}
        {%- do run_query('drop table if exists ' ~ labels) -%}
        {%- set next_labels -%}
            create table {{ labels }} using parquet as
            with neighbour_labels as (
                select
                    links.from_node as node,
                    min(previous.label) as label
                from {{ tables.links }} as links
                inner join {{ state.labels }} as previous on links.to_node = previous.node
                group by links.from_node
            ),

            propagated as (
                select
                    previous.node,
                    least(previous.label, coalesce(neighbour_labels.label, previous.label)) as label
                from {{ state.labels }} as previous
                left join neighbour_labels on previous.node = neighbour_labels.node
            )

            select
                propagated.node,
                coalesce(parents.label, propagated.label) as label
            from propagated
            left join propagated as parents on propagated.label = parents.node
        {%- endset -%}
        {%- do run_query(next_labels) -%}
        {%- set state.labels = labels -%}
        {%- set state.settled = links_joining_two_labels(tables.links, labels) == 0 -%}
    {%- endif -%}
    {%- endfor -%}
    {%- if not state.settled -%}
        {%- do exceptions.raise_compiler_error('connected_components: links still join two labels after '
            ~ max_rounds ~ ' rounds in ' ~ this) -%}
    {%- endif %}
    select
        node,
        label as component,
        count(*) over (partition by label) as component_size
    from {{ state.labels }}
{%- endmacro %}

{% macro connected_components_tables() -%}
    {%- set named = namespace(links=none, labels=[]) -%}
    {%- set named.links = this.incorporate(path={'identifier': this.identifier ~ '__links'}) -%}
    {%- for parity in [0, 1] -%}
        {%- do named.labels.append(this.incorporate(path={'identifier': this.identifier ~ '__labels_' ~ parity})) -%}
    {%- endfor -%}
    {{ return(named) }}
{%- endmacro %}

{% macro links_joining_two_labels(links, labels) -%}
    {%- set counted -%}
        select count(*)
        from {{ links }} as links
        inner join {{ labels }} as from_labels on links.from_node = from_labels.node
        inner join {{ labels }} as to_labels on links.to_node = to_labels.node
        where from_labels.label != to_labels.label
    {%- endset -%}
    {{ return(run_query(counted).columns[0].values()[0]) }}
{%- endmacro %}

{#- The model's post-hook: drops the tables of Spark's rounds (nothing on DuckDB). Also run before the rounds, for
    the tables a killed build left. -#}
{% macro connected_components_cleanup() -%}
    {{ return(adapter.dispatch('connected_components_cleanup')()) }}
{%- endmacro %}

{% macro default__connected_components_cleanup() -%}
{%- endmacro %}

{% macro spark__connected_components_cleanup() -%}
    {%- if execute -%}
        {%- set tables = connected_components_tables() -%}
        {%- for table in [tables.links] + tables.labels -%}
            {%- do run_query('drop table if exists ' ~ table) -%}
        {%- endfor -%}
    {%- endif -%}
{%- endmacro %}
