{#- An outbound offer segment (docs/delivery.md): the customers whose next best offer goes out on `channel`
    this period (eligible, not held out), with the contact datum the channel needs and the offer. Its
    expected incremental profit exceeds the contact's cost, as contact_pays says for every outbound segment. -#}
{% macro next_best_offer_segment(channel, contact_column) -%}
with

offers as (
    select * from {{ ref('customer_next_best_offer') }}
),

customers as (
    select * from {{ ref('customer_360') }}
),

final as (
    select
        offers.customer_id,
        customers.full_name,
        customers.{{ contact_column }},
        offers.offer_product_type,
        offers.reason,
        offers.expected_incremental_profit::decimal(18, 4) as expected_incremental_profit,
        offers.expected_incremental_profit + offers.contact_cost as expected_contact_value,
        offers.contact_cost,
        offers.expected_incremental_profit > 0 as contact_pays,
        offers.model_version,
        offers.valid_from
    from offers
    inner join customers on offers.customer_id = customers.customer_id
    where
        offers.is_eligible
        and not offers.is_holdout
        and offers.channel = '{{ channel }}'
        and customers.{{ contact_column }} is not null
)

select * from final
{%- endmacro %}


{#- Contacts only where they pay (docs/metrics.md): what a contact on `channel` is expected to bring,
    `value_at_stake` x the channel's measured uplift (int_contact_uplift; with no measured campaign at all, the
    whole value at stake: an upper bound), its cost, and whether it pays. Needs the CTE `contact_uplift`
    (contact_uplift_of). A null value at stake (no CLV this run) does not pay. -#}
{% macro contact_pays_columns(value_at_stake) -%}
    ({{ value_at_stake }}) * coalesce(contact_uplift.contact_uplift, 1.0) as expected_contact_value,
    contact_uplift.cost_per_contact as contact_cost,
    coalesce(({{ value_at_stake }}) * coalesce(contact_uplift.contact_uplift, 1.0) > contact_uplift.cost_per_contact, false)
        as contact_pays
{%- endmacro %}


{% macro contact_uplift_of(channel) -%}
    select * from {{ ref('int_contact_uplift') }} where channel = '{{ channel }}'
{%- endmacro %}
