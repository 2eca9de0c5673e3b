{#- What the uplift model of the next best offer knows about a customer at a moment (docs/metrics.md, "Next best
    offer"): from purchases, service contacts and campaign contacts strictly before `moment`, binned, so the
    model learns on past contacts and scores today's customers with one definition. `moments` is a relation
    with moment_id, customer_id and moment (timestamp); one row per moment_id comes out, with the product types
    held at the moment (product_types_held, a sorted list) and the binned features of offer_customer_features(). -#}
{% macro customer_features_at(moments) -%}
    with

    moments as (
        select * from {{ moments }}
    ),

    purchases_before as (
        select
            moments.moment_id,
            max(purchases.purchase_date) as last_purchase_date,
            min(purchases.purchase_date) as first_purchase_date,
            count(*) as orders,
            sum(purchases.amount) as spend,
            {{ sorted_list('purchases.product_type', distinct=true, condition='purchases.product_type is not null') }}
                as product_types_held
        from moments
        inner join {{ ref('fct_purchases') }} as purchases
            on
                moments.customer_id = purchases.customer_id
                and purchases.purchased_at < moments.moment
                and not purchases.is_return
        group by moments.moment_id
    ),

    service_before as (
        select
            moments.moment_id,
            count(*) filter (where service.occurred_at >= moments.moment - interval 365 days) as service_contacts,
            count(*) filter (where {{ is_open_complaint('service', at='moments.moment') }}) as open_complaints,
            avg(case when service.handled_by = 'agent' then 1.0 when service.handled_by in ('self_service', 'bot') then 0.0 end)
                filter (where service.occurred_at >= moments.moment - interval 365 days) as human_handled_share
        from moments
        inner join {{ ref('fct_service_interactions') }} as service
            on
                moments.customer_id = service.customer_id
                and service.occurred_at < moments.moment
        group by moments.moment_id
    ),

    campaigns_before as (
        select
            moments.moment_id,
            count(*) as campaigns_contacted,
            count(*) filter (where members.responded) as campaigns_responded
        from moments
        inner join {{ ref('int_campaign_members') }} as members
            on
                moments.customer_id = members.customer_id
                and members.contacted_at < moments.moment
                and members.contacted_at >= moments.moment - interval 365 days
                and not members.is_control
        group by moments.moment_id
    )

    select
        moments.moment_id,
        coalesce(purchases_before.product_types_held, {{ list_of([]) }}) as product_types_held,
        -- Days since the last purchase: 1 up to 30, 2 up to 90, 3 up to 180, 4 up to 365, 5 up to 730, 6 more, 0 never.
        case
            when purchases_before.last_purchase_date is null then 0
            else 1 + ({{ days_between('purchases_before.last_purchase_date', 'moments.moment::date') }} > 30)::int
                + ({{ days_between('purchases_before.last_purchase_date', 'moments.moment::date') }} > 90)::int
                + ({{ days_between('purchases_before.last_purchase_date', 'moments.moment::date') }} > 180)::int
                + ({{ days_between('purchases_before.last_purchase_date', 'moments.moment::date') }} > 365)::int
                + ({{ days_between('purchases_before.last_purchase_date', 'moments.moment::date') }} > 730)::int
        end as recency_bin,
        least(coalesce(purchases_before.orders, 0), 10) as frequency_bin,
        -- Average order value, R$: 0 none, then doubling steps from R$ 50 (1 below 50, ..., 6 from 800).
        case
            when coalesce(purchases_before.orders, 0) = 0 then 0
            else least(6, greatest(1, 2 + floor(log2(greatest(purchases_before.spend / purchases_before.orders, 1) / 50))))::int
        end as order_value_bin,
        -- Days since the first purchase: 0 never, 1 up to 90, 2 up to 365, 3 up to 730, 4 up to 1,460, 5 more.
        case
            when purchases_before.first_purchase_date is null then 0
            else 1 + ({{ days_between('purchases_before.first_purchase_date', 'moments.moment::date') }} > 90)::int
                + ({{ days_between('purchases_before.first_purchase_date', 'moments.moment::date') }} > 365)::int
                + ({{ days_between('purchases_before.first_purchase_date', 'moments.moment::date') }} > 730)::int
                + ({{ days_between('purchases_before.first_purchase_date', 'moments.moment::date') }} > 1460)::int
        end as tenure_bin,
        least(coalesce(service_before.open_complaints, 0), 1) as open_complaint_bin,
        least(coalesce(service_before.service_contacts, 0), 3) as service_contacts_bin,
        -- Who served them in the last 365 days: 0 nobody, 1 mostly self-service or bots, 2 mixed, 3 mostly agents.
        case {{ service_style('service_before.human_handled_share') }}
            when 'self_service' then 1
            when 'mixed' then 2
            when 'human' then 3
            else 0
        end as service_style_bin,
        least(coalesce(campaigns_before.campaigns_contacted, 0), 4) as campaigns_contacted_bin,
        least(coalesce(campaigns_before.campaigns_responded, 0), 2) as campaigns_responded_bin
    from moments
    left join purchases_before on moments.moment_id = purchases_before.moment_id
    left join service_before on moments.moment_id = service_before.moment_id
    left join campaigns_before on moments.moment_id = campaigns_before.moment_id
{%- endmacro %}


{#- The binned customer features above, in the model's order (dagster_project/lib/offers.py reads them by name). -#}
{% macro offer_customer_features() -%}
    {{ return(['recency_bin', 'frequency_bin', 'order_value_bin', 'tenure_bin', 'open_complaint_bin',
               'service_contacts_bin', 'service_style_bin', 'campaigns_contacted_bin', 'campaigns_responded_bin']) }}
{%- endmacro %}


{#- What the uplift model knows about a customer packed into one BIGINT (5 bits per binned feature of
    offer_customer_features() and product_types_held_bin): with the offer's product type, medium and affinity
    bin, the key an offer candidate meets its score on (marts.offer_uplift_scores). `relation` qualifies the
    columns. -#}
{% macro offer_profile_key(relation) -%}
    (
        {%- for feature in offer_customer_features() + ['product_types_held_bin'] %}
        {% if not loop.first %}+ {% endif %}({{ relation }}.{{ feature }}::bigint << {{ 5 * loop.index0 }})
        {%- endfor %}
    )
{%- endmacro %}


{#- How strongly what a customer holds points at `product_type`: the highest customer-level lift in
    product_affinity from a type in `held` (a list) to it, rounded to a quarter and capped at 4 (1 when nothing
    is held: no evidence either way), and the held type it comes from. Joined as `affinity`, one row per
    distinct (held list, product type). -#}
{% macro affinity_of_holdings(holdings) -%}
    select
        holdings.product_types_held,
        holdings.offer_product_type,
        case
            when max(affinity.lift) is null then 1.0
            else least(round(max(affinity.lift) * 4) / 4, 4.0)
        end as affinity_bin,
        max_by(affinity.antecedent_product_type, affinity.lift) as affinity_antecedent,
        max(affinity.lift) as affinity_lift
    from {{ holdings }} as holdings
    left join {{ ref('product_affinity') }} as affinity
        on
            affinity.level = 'customer'
            and array_contains(holdings.product_types_held, affinity.antecedent_product_type)
            and holdings.offer_product_type = affinity.consequent_product_type
    group by all
{%- endmacro %}


{#- The reason an offer is made, as a person reads it, from the numbers stored beside it (int_offer_ranking's
    columns): "holds moda; customers like this buy beleza 1.8x more often; +4.1 pts with an e-mail". -#}
{% macro offer_reason() -%}
    case
        when affinity_antecedent is not null then
            'holds ' || affinity_antecedent || '; customers like this buy ' || offer_product_type || ' '
            || {{ number_text('affinity_lift', 1) }} || 'x more often'
        else 'holds nothing yet; ' || {{ number_text('holder_share * 100', 0) }} || '% of customers buy ' || offer_product_type
    end
    || '; +' || {{ number_text('predicted_uplift * 100', 1) }} || ' pts with '
    || case channel
        when 'email' then 'an e-mail' when 'sms' then 'an SMS' when 'whatsapp' then 'a WhatsApp message'
        when 'phone' then 'a phone call' when 'direct_mail' then 'a letter' when 'push' then 'a push notification'
        when 'service_desk' then 'an offer at the service contact'
        else channel
    end
    || case when from_uplift_model then ' (uplift model)' else ' (affinity estimate)' end
{%- endmacro %}


{#- Every offer the `candidates` (rows of int_offer_candidates) could get on their channel (x int_offer_terms,
    those that pass `where`), priced: the predicted uplift of the contact (marts.offer_uplift_scores when the
    uplift model ranks this run, else the affinity estimate) and the expected incremental profit, uplift x
    margin - the contact's cost. One row per customer, channel and product type. -#}
{% macro priced_offers(candidates, where='true') -%}
    select
        candidates.customer_id,
        candidates.channel,
        {{ star_except('terms', ['channel']) }},
        uplift_scores.uplift is not null as from_uplift_model,
        coalesce(uplift_scores.model_version, 'affinity') as model_version,
        coalesce(uplift_scores.uplift, terms.affinity_uplift) as predicted_uplift,
        coalesce(uplift_scores.uplift, terms.affinity_uplift) * terms.margin_per_purchase
        - terms.cost_per_contact as expected_incremental_profit
    from {{ candidates }} as candidates
    inner join {{ ref('int_offer_terms') }} as terms
        on
            candidates.holdings_id = terms.holdings_id
            and candidates.channel = terms.channel
    left join {{ source('offers', 'offer_uplift_scores') }} as uplift_scores
        on
            candidates.offer_profile_key = uplift_scores.offer_profile_key
            and terms.offer_product_type = uplift_scores.offer_product_type
            and candidates.media = uplift_scores.media
            and terms.affinity_bin = uplift_scores.affinity_bin
    where {{ where }}
{%- endmacro %}
