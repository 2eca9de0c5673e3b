{#- The columns together identify a row: no combination occurs twice.
    Rows are grouped first by one 64-bit hash of the columns (an integer instead of several strings: about
    half the time on the ten million rows of the identity keys), and only the rows whose hash repeats are
    grouped by the columns themselves, so a hash collision is never reported as a duplicate. -#}
{% test unique_combination_of_columns(model, combination_of_columns) %}
    {%- set columns = combination_of_columns | join(', ') %}
    with repeated_hashes as (
        select hash({{ columns }}) as key_hash
        from {{ model }}
        group by key_hash
        having count(*) > 1
    )

    select {{ columns }}, count(*) as occurrences
    from {{ model }}
    where hash({{ columns }}) in (select key_hash from repeated_hashes)
    group by {{ columns }}
    having count(*) > 1
{% endtest %}
