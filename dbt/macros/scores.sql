{#- A 1-5 score by quintile over all rows, 5 best: the row's quintile by rank, ties sharing the rank of
    their group (so the same score), and the best group always 5. Order so that better comes last. -#}
{% macro quintile_score(order_by) -%}
    case
        when cume_dist() over (order by {{ order_by }}) = 1 then 5
        else 1 + floor(5 * (rank() over (order by {{ order_by }}) - 1) / count(*) over ())::integer
    end
{%- endmacro %}
