{#- The connected components of an undirected graph: one row per node of `nodes` (its column `node`) with
    `component` (the smallest node it reaches through `edges`, whose columns `from_node` -> `to_node` hold each
    link in both directions) and `component_size`. A transitive closure: fine for small components (people,
    households), not for one giant one. Used as the body of a CTE. -#}
{% macro connected_components(nodes, node, edges, from_node, to_node) -%}
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
