{#- An order's cost of goods: its known cost, else its amount at var('default_margin') (docs/metrics.md). -#}
{% macro cost_of_goods(amount, cost) -%}
    coalesce({{ cost }}, {{ amount }} * (1 - {{ var('default_margin') }}))
{%- endmacro %}
