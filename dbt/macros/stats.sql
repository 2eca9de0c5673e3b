{#- Statistics of the campaign measurement (docs/metrics.md, "Campaigns"). z is the two-sided 95 % normal
    quantile. normal_cdf() comes from dagster_project/lib/sql_functions.py (a dbt-duckdb plugin). -#}
{% macro z_95() -%} 1.959963984540054 {%- endmacro %}

{#- Wilson score interval of a proportion x / n: the low or the high bound. -#}
{% macro wilson_bound(x, n, side) -%}
    (
        ({{ x }} / {{ n }} + {{ z_95() }} ^ 2 / (2 * {{ n }}))
        {{ '-' if side == 'low' else '+' }} {{ z_95() }} * sqrt(
            ({{ x }} / {{ n }}) * (1 - {{ x }} / {{ n }}) / {{ n }} + {{ z_95() }} ^ 2 / (4 * {{ n }} ^ 2)
        )
    ) / (1 + {{ z_95() }} ^ 2 / {{ n }})
{%- endmacro %}

{#- Newcombe's hybrid score interval (1998, method 10) of the difference x1/n1 - x2/n2, from the two Wilson
    intervals: the low or the high bound. -#}
{% macro newcombe_bound(x1, n1, x2, n2, side) -%}
    {%- set p1 = '(' ~ x1 ~ ' / ' ~ n1 ~ ')' -%}
    {%- set p2 = '(' ~ x2 ~ ' / ' ~ n2 ~ ')' -%}
    {%- if side == 'low' -%}
        {{ p1 }} - {{ p2 }} - sqrt(
            ({{ p1 }} - {{ wilson_bound(x1, n1, 'low') }}) ^ 2 + ({{ wilson_bound(x2, n2, 'high') }} - {{ p2 }}) ^ 2
        )
    {%- else -%}
        {{ p1 }} - {{ p2 }} + sqrt(
            ({{ wilson_bound(x1, n1, 'high') }} - {{ p1 }}) ^ 2 + ({{ p2 }} - {{ wilson_bound(x2, n2, 'low') }}) ^ 2
        )
    {%- endif -%}
{%- endmacro %}

{#- Two-sided p-value of the pooled two-proportion z-test of x1/n1 = x2/n2 (1 when nobody or everybody
    converted: no variance, no evidence). -#}
{% macro two_proportion_p_value(x1, n1, x2, n2) -%}
    {%- set pooled = '((' ~ x1 ~ ' + ' ~ x2 ~ ') / (' ~ n1 ~ ' + ' ~ n2 ~ '))' -%}
    case
        when {{ pooled }} in (0, 1) then 1.0
        else 2 * normal_cdf(-abs(
            ({{ x1 }} / {{ n1 }} - {{ x2 }} / {{ n2 }})
            / sqrt({{ pooled }} * (1 - {{ pooled }}) * (1 / {{ n1 }} + 1 / {{ n2 }}))
        ))
    end
{%- endmacro %}

{#- p-value of the chi-square goodness-of-fit test (1 degree of freedom) of `control` of `total` members
    against the planned control share: the sample-ratio-mismatch test. -#}
{% macro sample_ratio_p_value(control, total, planned_share) -%}
    {%- set total = '(' ~ total ~ ')' -%}
    {%- set expected_control = '(' ~ total ~ ' * ' ~ planned_share ~ ')' -%}
    {%- set expected_contacted = '(' ~ total ~ ' * (1 - ' ~ planned_share ~ '))' -%}
    2 * normal_cdf(-sqrt(
        ({{ control }} - {{ expected_control }}) ^ 2 / {{ expected_control }}
        + ({{ total }} - {{ control }} - {{ expected_contacted }}) ^ 2 / {{ expected_contacted }}
    ))
{%- endmacro %}
