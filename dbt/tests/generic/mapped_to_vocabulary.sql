{#- Every delivered code maps to a canonical value: rows where the code is present but unknown. -#}
{% test mapped_to_vocabulary(model, column_name, source_column) %}
    select {{ source_column }} as unknown_code, count(*) as occurrences
    from {{ model }}
    where {{ source_column }} is not null and {{ column_name }} is null
    group by {{ source_column }}
{% endtest %}
