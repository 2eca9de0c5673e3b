-- The three best offers of each customer on each of their channels (docs/metrics.md, "Next best offer"): of
-- every product type they could be offered there, priced (macro priced_offers), those with the highest
-- expected incremental profit, best first (equal profits in the product types' alphabetical order). The
-- candidates are only the customers and channels no rule bars (int_offer_candidates, int_offer_eligibility).
with

candidates as (
    select * from {{ ref('int_offer_candidates') }}
),

priced as (
    {{ priced_offers('candidates') }}
),

terms as (
    select * from {{ ref('int_offer_terms') }}
),

ranked as (
    select
        customer_id,
        channel,
        holdings_id,
        offer_product_type,
        predicted_uplift,
        from_uplift_model,
        expected_incremental_profit,
        row_number() over (
            partition by customer_id, channel, holdings_id
            order by expected_incremental_profit desc, product_type_order asc
        ) as offer_rank
    from priced
),

uplift_model as (
    select coalesce(any_value(model_version), 'affinity') as model_version
    from {{ source('offers', 'offer_uplift_scores') }}
),

final as (
    select
        ranked.customer_id,
        ranked.channel,
        ranked.offer_rank,
        ranked.offer_product_type,
        ranked.predicted_uplift,
        ranked.from_uplift_model,
        case when ranked.from_uplift_model then uplift_model.model_version else 'affinity' end as model_version,
        terms.margin_per_purchase,
        terms.cost_per_contact,
        ranked.expected_incremental_profit,
        terms.affinity_antecedent,
        terms.affinity_lift,
        terms.holder_share
    from ranked
    inner join terms
        on
            ranked.holdings_id = terms.holdings_id
            and ranked.offer_product_type = terms.offer_product_type
            and ranked.channel = terms.channel
    cross join uplift_model
    where ranked.offer_rank <= 3
)

select * from final
