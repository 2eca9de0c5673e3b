{#- The connected components of an undirected graph: one row per node of `nodes` (its column `node`) with
    `component` (the smallest node it reaches through `edges`, whose columns `from_node` -> `to_node` hold each
    link in both directions) and `component_size`. A transitive closure: fine for small components (people,
    households), not for one giant one. Used as the body of a CTE. -#}
{% macro connected_components(nodes, node, edges, from_node, to_node) -%}
    {{ return(adapter.dispatch('connected_components')(nodes, node, edges, from_node, to_node)) }}
{%- endmacro %}

{% macro duckdb__connected_components(nodes, node, edges, from_node, to_node) -%}
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

{#- Spark's recursive CTEs take only UNION ALL, which never ends on a graph with cycles: the components by
    rounds of label propagation instead, each round giving a node the smallest label among itself and its
    neighbours (each round reads the last once: Spark inlines CTEs). A component settles in as many rounds as
    its diameter; `rounds` settles any component of a person or a household, and if some link still joins two
    labels the query fails (raise_error) rather than split a component. -#}
{% macro spark__connected_components(nodes, node, edges, from_node, to_node, rounds=10) -%}
    with labels_0 as (
        select distinct {{ node }} as node, {{ node }} as label from {{ nodes }}
    ),

    neighbourhoods as (
        select node as from_node, node as to_node from labels_0
        union all
        select {{ from_node }} as from_node, {{ to_node }} as to_node from {{ edges }}
    ),
    {%- for round in range(1, rounds + 1) %}

        labels_{{ round }} as (
            select
                neighbourhoods.from_node as node,
                min(labels.label) as label
            from neighbourhoods
            inner join labels_{{ round - 1 }} as labels on neighbourhoods.to_node = labels.node
            group by neighbourhoods.from_node
        ),
    {%- endfor %}

    unsettled as (
        select count(*) as links
        from {{ edges }}
        inner join labels_{{ rounds }} as from_labels on {{ edges }}.{{ from_node }} = from_labels.node
        inner join labels_{{ rounds }} as to_labels on {{ edges }}.{{ to_node }} = to_labels.node
        where from_labels.label != to_labels.label
    )

    select
        labels.node,
        labels.label as component,
        count(*) over (partition by labels.label) as component_size
    from labels_{{ rounds }} as labels
    cross join unsettled
    where case
        when unsettled.links = 0 then true
        else raise_error('connected_components: links still join two labels after {{ rounds }} rounds')
    end
{%- endmacro %}
