{#- Statistics of the campaign measurement (docs/metrics.md, "Campaigns"). z is the two-sided 95 % normal
    quantile. normal_cdf: dbt/macros/portable.sql. -#}
{% macro z_95() -%} 1.959963984540054 {%- endmacro %}

{#- Wilson score interval of a proportion x / n: the low or the high bound. -#}
{% macro wilson_bound(x, n, side) -%}
    (
        ({{ x }} / {{ n }} + power({{ z_95() }}, 2) / (2 * {{ n }}))
        {{ '-' if side == 'low' else '+' }} {{ z_95() }} * sqrt(
            ({{ x }} / {{ n }}) * (1 - {{ x }} / {{ n }}) / {{ n }} + power({{ z_95() }}, 2) / (4 * power({{ n }}, 2))
        )
    ) / (1 + power({{ z_95() }}, 2) / {{ n }})
{%- endmacro %}

{#- Newcombe's hybrid score interval (1998, method 10) of the difference x1/n1 - x2/n2, from the two Wilson
    intervals: the low or the high bound. -#}
{% macro newcombe_bound(x1, n1, x2, n2, side) -%}
    {%- set p1 = '(' ~ x1 ~ ' / ' ~ n1 ~ ')' -%}
    {%- set p2 = '(' ~ x2 ~ ' / ' ~ n2 ~ ')' -%}
    {%- if side == 'low' -%}
        {{ p1 }} - {{ p2 }} - sqrt(
            power({{ p1 }} - {{ wilson_bound(x1, n1, 'low') }}, 2) + power({{ wilson_bound(x2, n2, 'high') }} - {{ p2 }}, 2)
        )
    {%- else -%}
        {{ p1 }} - {{ p2 }} + sqrt(
            power({{ wilson_bound(x1, n1, 'high') }} - {{ p1 }}, 2) + power({{ p2 }} - {{ wilson_bound(x2, n2, 'low') }}, 2)
        )
    {%- endif -%}
{%- endmacro %}

{#- Two-sided p-value of the pooled two-proportion z-test of x1/n1 = x2/n2 (1 when nobody or everybody
    converted: no variance, no evidence). -#}
{% macro two_proportion_p_value(x1, n1, x2, n2) -%}
    {%- set pooled = '((' ~ x1 ~ ' + ' ~ x2 ~ ') / (' ~ n1 ~ ' + ' ~ n2 ~ '))' -%}
    case
        when {{ pooled }} in (0, 1) then 1.0
        {%- set z -%}
            ({{ x1 }} / {{ n1 }} - {{ x2 }} / {{ n2 }})
            / sqrt({{ pooled }} * (1 - {{ pooled }}) * (1 / {{ n1 }} + 1 / {{ n2 }}))
        {%- endset %}
        else 2 * {{ normal_cdf('-abs(' ~ z ~ ')') }}
    end
{%- endmacro %}

{#- p-value of the chi-square goodness-of-fit test (1 degree of freedom) of `control` of `total` members
    against the planned control share: the sample-ratio-mismatch test. -#}
{% macro sample_ratio_p_value(control, total, planned_share) -%}
    {%- set total = '(' ~ total ~ ')' -%}
    {%- set expected_control = '(' ~ total ~ ' * ' ~ planned_share ~ ')' -%}
    {%- set expected_contacted = '(' ~ total ~ ' * (1 - ' ~ planned_share ~ '))' -%}
    {%- set chi_square -%}
        power({{ control }} - {{ expected_control }}, 2) / {{ expected_control }}
        + power({{ total }} - {{ control }} - {{ expected_contacted }}, 2) / {{ expected_contacted }}
    {%- endset %}
    2 * {{ normal_cdf('-sqrt(' ~ chi_square ~ ')') }}
{%- endmacro %}
