{#- A complaint still open (customer_360.open_complaints, the service desk's list, the offer model's features):
    a complaint not resolved; with `at`, one not resolved by that moment. `service` is the alias of a
    fct_service_interactions relation. -#}
{% macro is_open_complaint(service, at=none) -%}
    ({{ service }}.interaction_type = 'complaint' and (not {{ service }}.is_resolved
        {%- if at is not none %} or {{ service }}.resolved_at >= {{ at }}{% endif %}))
{%- endmacro %}
