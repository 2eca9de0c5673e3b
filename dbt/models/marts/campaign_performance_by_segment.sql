-- The campaign measures by the customer's RFM segment and value tier at contact time (docs/metrics.md,
-- "Campaigns"): which customers a campaign moved, and where its contacts were wasted.
-- RFM at contact: the member's recency, frequency and monetary value from its purchases before the contact,
-- scored 1-5 against the quintiles of the customer base at the campaign's first contact (the base's quintiles
-- estimated from up to 20,000 customers chosen by a hash of their id), segmented by dbt/seeds/rfm_segments.csv.
-- Value tier at contact: the customer_value_history snapshot at or before the contact date; 'unknown' before the
-- first snapshot (value tiers need CLV, which cannot be recomputed for the past).
with

members as (
    select * from {{ ref('int_campaign_members') }}
),

purchases as (
    select * from {{ ref('fct_purchases') }}
),

customers as (
    select * from {{ ref('dim_customers') }}
),

segments as (
    select * from {{ ref('rfm_segments') }}
),

value_history as (
    select * from {{ ref('customer_value_history') }}
),

campaigns as (
    select * from {{ ref('dim_campaigns') }}
),

campaign_starts as (
    select
        source_system,
        campaign_id,
        min(contacted_at) as drawn_at
    from members
    group by all
),

base_sample_purchases as {{ materialized() }} (
    -- The purchases of the base's sample, taken first (a range join of every purchase with every campaign
    -- start, before the sample's filter, is campaigns x purchases rows).
    select
        purchases.customer_id,
        purchases.purchased_at,
        purchases.purchase_date,
        purchases.amount,
        purchases.is_return
    from purchases
    semi join (
        select customer_id
        from customers
        where {{ md5_bucket('cast(customer_id as string)', 'greatest(1, cast(floor((select count(*) from customers) / 20000) as bigint))') }} = 0
    ) as base_sample on purchases.customer_id = base_sample.customer_id
),

base_at_start as (
    select
        campaign_starts.source_system,
        campaign_starts.campaign_id,
        {{ days_between('max(purchases.purchase_date) filter (where not purchases.is_return)', 'campaign_starts.drawn_at::date') }}
            as recency_days,
        count(*) filter (where not purchases.is_return) as frequency,
        sum(purchases.amount) as monetary
    from campaign_starts
    inner join base_sample_purchases as purchases on purchases.purchased_at < campaign_starts.drawn_at
    group by campaign_starts.source_system, campaign_starts.campaign_id, campaign_starts.drawn_at, purchases.customer_id
    having count(*) filter (where not purchases.is_return) > 0
),

quintiles as (
    select
        source_system,
        campaign_id,
        {{ quantiles('recency_days', [0.2, 0.4, 0.6, 0.8]) }} as recency,
        {{ quantiles('frequency', [0.2, 0.4, 0.6, 0.8]) }} as frequency,
        {{ quantiles('monetary', [0.2, 0.4, 0.6, 0.8]) }} as monetary
    from base_at_start
    group by all
),

scored as (
    select
        members.*,
        -- 5 best: the most recent, most frequent, highest spend fifth of the base.
        1 + {{ list_size("filter(quintiles.recency, cut -> members.recency_days_at_contact < cut)") }} as r_score,
        1 + {{ list_size("filter(quintiles.frequency, cut -> members.frequency_at_contact > cut)") }} as f_score,
        1 + {{ list_size("filter(quintiles.monetary, cut -> members.monetary_at_contact > cut)") }} as m_score
    from members
    inner join quintiles
        on
            members.source_system = quintiles.source_system
            and members.campaign_id = quintiles.campaign_id
    where members.frequency_at_contact > 0
),

segmented as (
    select
        scored.source_system,
        scored.campaign_id,
        scored.customer_id,
        segments.segment as rfm_segment
    from scored
    inner join segments
        on
            scored.r_score between segments.r_min and segments.r_max
            and (scored.f_score + scored.m_score) / 2 between segments.fm_min and segments.fm_max
    qualify row_number() over (
        partition by scored.source_system, scored.campaign_id, scored.customer_id order by segments.rule_order
    ) = 1
),

-- The latest snapshot at or before the contact (what DuckDB's ASOF join finds; Spark has none).
tier_at_contact as (
    select
        members.source_system,
        members.campaign_id,
        members.customer_id,
        max_by(value_history.value_tier, value_history.as_of) as value_tier
    from members
    inner join value_history
        on
            members.customer_id = value_history.customer_id
            and members.contacted_at::date >= value_history.as_of
    group by members.source_system, members.campaign_id, members.customer_id
),

members_at_contact as (
    select
        members.*,
        coalesce(segmented.rfm_segment, 'No purchase yet') as rfm_segment_at_contact,
        coalesce(tier_at_contact.value_tier, 'unknown') as value_tier_at_contact
    from members
    left join segmented
        on
            members.source_system = segmented.source_system
            and members.campaign_id = segmented.campaign_id
            and members.customer_id = segmented.customer_id
    left join tier_at_contact
        on
            members.source_system = tier_at_contact.source_system
            and members.campaign_id = tier_at_contact.campaign_id
            and members.customer_id = tier_at_contact.customer_id
),

per_segment as (
    {{ campaign_measures('members_at_contact', [
        'source_system', 'campaign_id', 'rfm_segment_at_contact', 'value_tier_at_contact'
    ]) }}
),

final as (
    select
        per_segment.source_system,
        per_segment.campaign_id,
        campaigns.media,
        per_segment.rfm_segment_at_contact,
        per_segment.value_tier_at_contact,
        {{ campaign_measure_columns('per_segment', 'campaigns.cost_per_contact * per_segment.contacted') }}
    from per_segment
    left join campaigns
        on
            per_segment.source_system = campaigns.source_system
            and per_segment.campaign_id = campaigns.campaign_id
)

select * from final
