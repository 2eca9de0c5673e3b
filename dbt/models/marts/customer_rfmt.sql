-- RFM + tenure at as_of (docs/metrics.md). Scores 1-5 by quintile, 5 best (most recent, most frequent, highest
-- spend, longest tenure), tied customers sharing a score (macro quintile_score).
with

purchases as (
    select * from {{ ref('fct_purchases') }}
),

observation_window as (
    select * from {{ ref('observation_window') }}
),

segments as (
    select * from {{ ref('rfm_segments') }}
),

purchases_in_window as (
    select purchases.*
    from purchases
    cross join observation_window
    where
        purchases.purchase_date <= observation_window.as_of
        and (
            {{ var('rfm_window_days') }} = 0
            or purchases.purchase_date > observation_window.as_of - {{ var('rfm_window_days') }}
        )
),

per_customer as (
    select
        customer_id,
        min(purchase_date) filter (where amount > 0) as first_purchase_date,
        max(purchase_date) filter (where amount > 0) as last_purchase_date,
        count(*) filter (where amount > 0) as frequency,
        sum(amount) as monetary
    from purchases_in_window
    group by customer_id
),

measured as (
    select
        per_customer.customer_id,
        {{ days_between('per_customer.last_purchase_date', 'observation_window.as_of') }} as recency_days,
        per_customer.frequency,
        per_customer.monetary,
        {{ days_between('per_customer.first_purchase_date', 'observation_window.as_of') }} as tenure_days,
        case
            when per_customer.frequency > 1
                then
                    {{ days_between('per_customer.first_purchase_date', 'per_customer.last_purchase_date') }}
                    / (per_customer.frequency - 1)
        end as avg_days_between_purchases,
        observation_window.as_of
    from per_customer
    cross join observation_window
    where per_customer.frequency > 0
),

scored as (
    select
        *,
        {{ quintile_score('recency_days desc') }} as r_score,
        {{ quintile_score('frequency') }} as f_score,
        {{ quintile_score('monetary') }} as m_score,
        {{ quintile_score('tenure_days') }} as t_score
    from measured
),

segmented as (
    select
        scored.*,
        segments.segment as rfm_segment
    from scored
    left join segments
        on
            scored.r_score between segments.r_min and segments.r_max
            and (scored.f_score + scored.m_score) / 2 between segments.fm_min and segments.fm_max
    qualify row_number() over (partition by scored.customer_id order by segments.rule_order) = 1
),

final as (
    select
        customer_id,
        recency_days,
        frequency,
        monetary::decimal(18, 4) as monetary,
        tenure_days,
        avg_days_between_purchases::double as avg_days_between_purchases,
        r_score,
        f_score,
        m_score,
        t_score,
        r_score::string || f_score::string || m_score::string as rfm_cell,
        rfm_segment,
        as_of
    from segmented
)

select * from final
