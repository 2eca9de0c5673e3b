{#- How a customer is served, from the share of their service contacts an agent handled: 'human' (at least
    var service_style_human_share, C360_SERVICE_STYLE_HUMAN_SHARE), 'self_service' (at most var
    service_style_self_service_share), else 'mixed'; null without service contacts. -#}
{% macro service_style(human_handled_share) -%}
    (case
        when {{ human_handled_share }} is null then null
        when {{ human_handled_share }} >= {{ var('service_style_human_share') }} then 'human'
        when {{ human_handled_share }} <= {{ var('service_style_self_service_share') }} then 'self_service'
        else 'mixed'
    end)
{%- endmacro %}

{#- A complaint still open (customer_360.open_complaints, the service desk's list, the offer model's features):
    a complaint not resolved; with `at`, one not resolved by that moment. `service` is the alias of a
    fct_service_interactions relation. -#}
{% macro is_open_complaint(service, at=none) -%}
    ({{ service }}.interaction_type = 'complaint' and (not {{ service }}.is_resolved
        {%- if at is not none %} or {{ service }}.resolved_at >= {{ at }}{% endif %}))
{%- endmacro %}
