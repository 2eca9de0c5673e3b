{#- The campaign measures of members (int_campaign_members rows) grouped by `group_by`: counts, conversions,
    revenue and gross profit per member of each group (docs/metrics.md, "Campaigns"). -#}
{% macro campaign_measures(members, group_by) -%}
    select
        {% for column in group_by -%} {{ column }}, {% endfor %}
        count(*) filter (where not is_control) as contacted,
        count(*) filter (where is_control) as control,
        count(*) filter (where not is_control and responded) as responders,
        count(*) filter (where not is_control and converted) as conversions_contacted,
        count(*) filter (where is_control and converted) as conversions_control,
        avg(revenue::double) filter (where not is_control) as revenue_per_contacted,
        avg(revenue::double) filter (where is_control) as revenue_per_control,
        coalesce(var_samp(revenue::double) filter (where not is_control), 0) as revenue_variance_contacted,
        coalesce(var_samp(revenue::double) filter (where is_control), 0) as revenue_variance_control,
        avg(gross_profit::double) filter (where not is_control) as gross_profit_per_contacted,
        avg(gross_profit::double) filter (where is_control) as gross_profit_per_control,
        count(*) filter (where drawn_in_both_groups) as drawn_in_both_groups,
        bool_and(attribution_complete) as attribution_complete
    from {{ members }}
    group by {{ group_by | join(', ') }}
{%- endmacro %}

{#- The measured columns of a campaign_measures row `m`, given the cost of its contacts. -#}
{% macro campaign_measure_columns(m, contact_cost) -%}
    {{ m }}.contacted,
    {{ m }}.control,
    {{ m }}.responders,
    {{ m }}.responders / nullif({{ m }}.contacted, 0) as response_rate,
    {{ m }}.conversions_contacted,
    {{ m }}.conversions_control,
    {{ m }}.conversions_contacted / nullif({{ m }}.contacted, 0) as conversion_rate_contacted,
    {{ m }}.conversions_control / nullif({{ m }}.control, 0) as conversion_rate_control,
    case when {{ m }}.control > 0 and {{ m }}.contacted > 0 then
        {{ m }}.conversions_contacted / {{ m }}.contacted - {{ m }}.conversions_control / {{ m }}.control
    end as lift_abs,
    case when {{ m }}.control > 0 and {{ m }}.contacted > 0 then
        {{ newcombe_bound(m ~ '.conversions_contacted', m ~ '.contacted', m ~ '.conversions_control', m ~ '.control', 'low') }}
    end as lift_abs_ci_low,
    case when {{ m }}.control > 0 and {{ m }}.contacted > 0 then
        {{ newcombe_bound(m ~ '.conversions_contacted', m ~ '.contacted', m ~ '.conversions_control', m ~ '.control', 'high') }}
    end as lift_abs_ci_high,
    case when {{ m }}.conversions_control > 0 and {{ m }}.contacted > 0 then
        ({{ m }}.conversions_contacted / {{ m }}.contacted) / ({{ m }}.conversions_control / {{ m }}.control) - 1
    end as lift_rel,
    case when {{ m }}.control > 0 and {{ m }}.contacted > 0 then
        {{ two_proportion_p_value(m ~ '.conversions_contacted', m ~ '.contacted', m ~ '.conversions_control', m ~ '.control') }}
    end as p_value,
    lift_abs * {{ m }}.contacted as incremental_conversions,
    {{ m }}.revenue_per_contacted,
    {{ m }}.revenue_per_control,
    ({{ m }}.revenue_per_contacted - {{ m }}.revenue_per_control) * {{ m }}.contacted as incremental_revenue,
    case when {{ m }}.control > 0 and {{ m }}.contacted > 0 then
        {{ m }}.contacted * sqrt(
            {{ m }}.revenue_variance_contacted / {{ m }}.contacted + {{ m }}.revenue_variance_control / {{ m }}.control
        )
    end as incremental_revenue_se,
    ({{ m }}.gross_profit_per_contacted - {{ m }}.gross_profit_per_control) * {{ m }}.contacted
        as incremental_profit,
    ({{ contact_cost }})::double as contact_cost,
    incremental_profit - contact_cost as net_incremental_profit,
    net_incremental_profit / nullif(contact_cost, 0) as roi,
    case
        when lift_abs is null then 'no_control'
        when lift_abs_ci_low > 0 then 'positive'
        when lift_abs_ci_high < 0 then 'negative'
        else 'not_significant'
    end as verdict,
    -- The z-test and the intervals rest on the normal approximation: too few expected conversions (or
    -- non-conversions) in the control group to rely on it.
    coalesce(
        {{ m }}.control * least(
            ({{ m }}.conversions_contacted + {{ m }}.conversions_control) / ({{ m }}.contacted + {{ m }}.control),
            1 - ({{ m }}.conversions_contacted + {{ m }}.conversions_control) / ({{ m }}.contacted + {{ m }}.control)
        ) < 5,
        true
    ) as control_too_small
{%- endmacro %}
