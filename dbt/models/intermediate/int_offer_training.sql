-- What the uplift model learns from (docs/metrics.md, "Next best offer"): one row per customer drawn for a
-- campaign with a product type, a control group and a complete attribution window, with what was known about
-- the customer at the contact (macro customer_features_at) and whether they bought the campaign's product type
-- in the window. Above var('offer_training_max_contacts') members, a deterministic sample (by a hash of campaign
-- and customer): every control member up to half of that budget, the contacted the rest; sampled_share and
-- control_sampled_share say how much of each group is kept.
{%- set max_contacts = var('offer_training_max_contacts') %}
with

members as (
    select * from {{ ref('int_campaign_members') }}
),

campaigns as (
    select * from {{ ref('dim_campaigns') }}
),

usable_campaigns as (
    select
        members.source_system,
        members.campaign_id
    from members
    where members.attribution_complete and members.product_type is not null
    group by all
    having bool_or(members.is_control) and bool_or(not members.is_control)
),

usable_members as (
    select members.*
    from members
    inner join usable_campaigns
        on
            members.source_system = usable_campaigns.source_system
            and members.campaign_id = usable_campaigns.campaign_id
),

group_sizes as (
    select
        count(*) filter (where is_control) as controls,
        count(*) filter (where not is_control) as contacted
    from usable_members
),

-- Within the budget, every control member up to half of it (controls are the scarce group), the contacted the
-- rest; each group sampled by a hash of campaign and customer.
kept as (
    select
        controls,
        contacted,
        least(controls, greatest({{ max_contacts }} / 2, {{ max_contacts }} - contacted)) as controls_kept
    from group_sizes
),

sampling as (
    select
        least(1.0, controls_kept / nullif(controls, 0)) as control_sampled_share,
        least(1.0, greatest({{ max_contacts }} - controls_kept, 0) / nullif(contacted, 0)) as sampled_share
    from kept
),

sampled as (
    select
        row_number() over (order by usable_members.source_system, usable_members.campaign_id, usable_members.customer_id)
            as moment_id,
        usable_members.*,
        usable_members.contacted_at as moment,
        sampling.sampled_share,
        sampling.control_sampled_share
    from usable_members
    cross join sampling
    where
        {{ md5_bucket("usable_members.campaign_id || ':' || usable_members.customer_id", 1000000) }}
        < case when usable_members.is_control then sampling.control_sampled_share else sampling.sampled_share end * 1000000
),

features as (
    {{ customer_features_at('sampled') }}
),

-- Materialized: else the optimiser joins the affinity table on the product type alone first (150 million rows
-- at 50,000 people) and the features after.
member_features as {{ materialized() }} (
    select
        sampled.*,
        {{ star_except('features', ['moment_id']) }}
    from sampled
    inner join features on sampled.moment_id = features.moment_id
),

holdings as (
    select distinct
        product_types_held,
        product_type as offer_product_type
    from member_features
),

affinity as (
    {{ affinity_of_holdings('holdings') }}
),

final as (
    select
        member_features.source_system,
        member_features.campaign_id,
        member_features.customer_id,
        member_features.contacted_at,
        campaigns.start_date as campaign_start_date,
        member_features.media,
        member_features.product_type as offer_product_type,
        member_features.is_control,
        member_features.converted_product_type,
        {% for feature in offer_customer_features() -%}
            member_features.{{ feature }},
        {% endfor -%}
        least({{ list_size('member_features.product_types_held') }}, 5) as product_types_held_bin,
        array_contains(member_features.product_types_held, member_features.product_type)::int as holds_offer_type,
        affinity.affinity_bin,
        member_features.sampled_share,
        member_features.control_sampled_share
    from member_features
    inner join campaigns
        on
            member_features.source_system = campaigns.source_system
            and member_features.campaign_id = campaigns.campaign_id
    inner join affinity
        on
            member_features.product_types_held = affinity.product_types_held
            and member_features.product_type = affinity.offer_product_type
)

select * from final
