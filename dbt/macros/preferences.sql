{#- Per customer, the value of `column` used most in `relation` (rows where `condition` holds), the most
    recently used (`used_at`) on a tie, and of values used as often and last at the same time, the last in
    alphabetical order (so the pick never depends on the engine or the order rows were read), as
    `preferred_name`. Counted per value and picked with arg_max, not an ordered mode(), which holds every row of
    a customer in memory (out of memory at millions of rows). -#}
{% macro most_used(relation, column, used_at, preferred_name, condition='true') -%}
    select
        customer_id,
        max_by({{ column }}, (uses, last_used_at, {{ column }})) as {{ preferred_name }}
    from (
        select
            customer_id,
            {{ column }},
            count(*) as uses,
            max({{ used_at }}) as last_used_at
        from {{ relation }}
        where {{ column }} is not null and ({{ condition }})
        group by customer_id, {{ column }}
    )
    group by customer_id
{%- endmacro %}
