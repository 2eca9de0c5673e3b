"""Campaign measurement: a hand-computed case through the real ingest and dbt build, checked against SciPy;
and generated campaigns with a known true effect, measured against the generator's truth."""

from __future__ import annotations

import dagster as dg
import duckdb
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from dagster_project.synthetic import generate
from tests.conftest import run_pipeline

# Campaign K1 (e-mail, R$ 0.50 a contact, 25 % control planned) contacts A1-A8 and holds out B1-B4, all on
# 2025-03-01 10:00; the window is the 30 days after. K2 (catalogue) has no control group. K3's platform broke
# its hold-out: D1 is in the control group and was also contacted, which fails the run at the campaign gate.
CAMPAIGNS = """campaign_id,name,media,objective,product_type,start_date,end_date,cost_per_contact,planned_control_share
K1,Livros de março,email,cross_sell,livros,2025-03-01,2025-03-07,0.50,0.25
K2,Catálogo de outono,catalogo,retention,casa,2025-03-01,2025-03-10,4.00,0
K3,SMS de abril,sms,retention,casa,2025-04-01,2025-04-05,0.06,0.5
"""
CONTACTS = """campaign_id,source_customer_id,contacted_at,is_control,responded_at,response,order_id
K1,A1,2025-03-01 10:00:00,false,,,
K1,A2,2025-03-01 10:00:00,false,,,
K1,A3,2025-03-01 10:00:00,false,,,
K1,A4,2025-03-01 10:00:00,false,,,
K1,A5,2025-03-01 10:00:00,false,,,
K1,A6,2025-03-01 10:00:00,false,,,
K1,A7,2025-03-01 10:00:00,false,2025-03-02 09:00:00,accepted,S7
K1,A8,2025-03-01 10:00:00,false,2025-03-01 12:00:00,declined,
K1,B1,2025-03-01 10:00:00,true,,,
K1,B2,2025-03-01 10:00:00,true,,,
K1,B3,2025-03-01 10:00:00,true,,,
K1,B4,2025-03-01 10:00:00,true,,,
K2,A1,2025-03-05 08:00:00,false,,,
K2,C1,2025-03-05 08:00:00,false,,,
K2,C2,2025-03-05 08:00:00,false,,,
K3,D1,2025-04-01 09:00:00,true,,,
K3,D1,2025-04-02 09:00:00,false,,,
K3,D2,2025-04-01 09:00:00,false,,,
K3,D3,2025-04-01 09:00:00,true,,,
"""
PURCHASES = """order_id,source_customer_id,purchased_at,amount,cost,product_type,store_type
S1,A1,2025-03-05 12:00:00,100.00,60.00,livros,ecommerce
S2,A2,2025-03-31 10:00:00,50.00,20.00,livros,own_store
S3,A3,2025-03-31 10:00:01,70.00,30.00,livros,own_store
S4,A4,2025-02-20 10:00:00,40.00,10.00,livros,own_store
S5,A5,2025-03-10 10:00:00,-30.00,-15.00,livros,own_store
S6a,A6,2025-03-03 10:00:00,20.00,10.00,casa,ecommerce
S6b,A6,2025-03-20 10:00:00,25.00,10.00,casa,ecommerce
S7,A7,2025-03-02 09:00:00,80.00,40.00,livros,ecommerce
S9,B1,2025-03-15 10:00:00,60.00,30.00,livros,partner_store
S10,B2,2025-03-01 09:00:00,90.00,50.00,livros,own_store
S11,C1,2025-03-20 10:00:00,35.00,20.00,casa,own_store
"""
IN_WINDOW = {  # by hand: what each member bought in its window (S2 is exactly 30 days after; S3 one second late)
    "K1": {
        "contacted": {"A1": (100, 40), "A2": (50, 30), "A3": None, "A4": None, "A5": None,
                      "A6": (45, 25), "A7": (80, 40), "A8": None},
        "control": {"B1": (60, 30), "B2": None, "B3": None, "B4": None},
    },
}  # fmt: skip


@pytest.fixture(scope="module")
def hand_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dg.ExecuteInProcessResult, pd.DataFrame]:
    folder = tmp_path_factory.mktemp("campaign_case")
    for family, system, text in (
        ("campaigns", "crm", CAMPAIGNS),
        ("campaign_contacts", "crm", CONTACTS),
        ("purchases", "crm", PURCHASES),
    ):
        (folder / "raw" / family / system).mkdir(parents=True)
        (folder / "raw" / family / system / f"{family}.csv").write_text(text, encoding="utf-8")
    result = run_pipeline(folder / "raw", folder / "warehouse.duckdb", as_of="2025-06-30")
    with duckdb.connect(str(folder / "warehouse.duckdb"), read_only=True) as connection:
        measured = connection.execute("select * from marts.campaign_performance order by campaign_id").df()
    return result, measured


@pytest.fixture(scope="module")
def hand_case(hand_run) -> pd.DataFrame:
    return hand_run[1]


def test_a_control_group_member_who_was_contacted_fails_the_campaign_gate(hand_run):
    result, measured = hand_run
    broken = measured.set_index("campaign_id")["control_records_contacted"]
    assert broken.to_dict() == {"K1": 0, "K2": 0, "K3": 1}
    failed = [
        (evaluation.asset_key.to_user_string(), evaluation.check_name, evaluation.description)
        for evaluation in result.get_asset_check_evaluations()
        if not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.ERROR
    ]  # (the tiny case has too few repeat buyers for a CLV: that check only warns)
    assert failed == [
        (
            "marts/campaign_performance",
            "mart_gate",
            "marts.campaign_performance: suite campaign_performance FAILED (18 expectations, 3 rows); "
            "control_records_contacted: expect_column_values_to_be_between failed on 1 of 3 rows",
        )
    ]
    assert not result.success
    delivered = {event.asset_key.path[0] for event in result.get_asset_materialization_events()}
    assert "exports" not in delivered and "publish" not in delivered  # nothing leaves on a broken hold-out


def test_the_normal_distribution_function_of_the_sql_matches_scipy_into_the_tails():
    from dagster_project.lib.sql_functions import normal_cdf

    points = np.concatenate([np.linspace(-37, 8, 901), [0.0, -1.959963984540054]])
    ours = np.array([normal_cdf(x) for x in points])
    assert np.allclose(ours, stats.norm.cdf(points), rtol=1e-12, atol=0)
    assert normal_cdf(-1.959963984540054) == pytest.approx(0.025, rel=1e-14)


def wilson(successes: int, trials: int) -> tuple[float, float]:
    interval = stats.binomtest(successes, trials).proportion_ci(0.95, method="wilson")
    return interval.low, interval.high


def test_rates_lift_interval_and_p_value_of_a_hand_computed_campaign(hand_case):
    k1 = hand_case.set_index("campaign_id").loc["K1"]
    contacted, control = IN_WINDOW["K1"]["contacted"], IN_WINDOW["K1"]["control"]
    x1, n1 = sum(v is not None for v in contacted.values()), len(contacted)
    x2, n2 = sum(v is not None for v in control.values()), len(control)
    assert (x1, n1, x2, n2) == (4, 8, 1, 4)
    assert (k1.contacted, k1.control, k1.conversions_contacted, k1.conversions_control) == (n1, n2, x1, x2)
    assert k1.responders == 1 and k1.response_rate == pytest.approx(1 / 8)
    assert k1.conversion_rate_contacted == pytest.approx(0.5) and k1.conversion_rate_control == pytest.approx(
        0.25
    )
    assert k1.lift_abs == pytest.approx(0.25) and k1.lift_rel == pytest.approx(1.0)

    # Newcombe's hybrid score interval from SciPy's Wilson intervals.
    (low1, high1), (low2, high2) = wilson(x1, n1), wilson(x2, n2)
    p1, p2 = x1 / n1, x2 / n2
    assert k1.lift_abs_ci_low == pytest.approx(p1 - p2 - np.hypot(p1 - low1, high2 - p2), abs=1e-12)
    assert k1.lift_abs_ci_high == pytest.approx(p1 - p2 + np.hypot(high1 - p1, p2 - low2), abs=1e-12)
    # The pooled two-proportion z-test is the 2x2 chi-square test without continuity correction.
    table = [[x1, n1 - x1], [x2, n2 - x2]]
    assert k1.p_value == pytest.approx(stats.chi2_contingency(table, correction=False).pvalue, abs=1e-12)
    assert k1.verdict == "not_significant" and k1.control_too_small

    revenue = {group: np.array([v[0] if v else 0.0 for v in members.values()]) for group, members in
               IN_WINDOW["K1"].items()}  # fmt: skip
    profit = {group: np.array([v[1] if v else 0.0 for v in members.values()]) for group, members in
              IN_WINDOW["K1"].items()}  # fmt: skip
    incremental_revenue = (revenue["contacted"].mean() - revenue["control"].mean()) * n1
    assert k1.incremental_revenue == pytest.approx(incremental_revenue)  # (275/8 - 60/4) * 8 = 155
    assert incremental_revenue == pytest.approx(155.0)
    se = n1 * np.sqrt(revenue["contacted"].var(ddof=1) / n1 + revenue["control"].var(ddof=1) / n2)
    assert k1.incremental_revenue_se == pytest.approx(se)
    incremental_profit = (profit["contacted"].mean() - profit["control"].mean()) * n1
    assert k1.incremental_profit == pytest.approx(incremental_profit)  # (135/8 - 30/4) * 8 = 75
    assert k1.contact_cost == pytest.approx(4.0) and k1.net_incremental_profit == pytest.approx(71.0)
    assert k1.roi == pytest.approx(71.0 / 4.0)
    observed = stats.chisquare([n2, n1], f_exp=[0.25 * (n1 + n2), 0.75 * (n1 + n2)])
    assert k1.sample_ratio_p_value == pytest.approx(observed.pvalue, abs=1e-12)
    assert not k1.sample_ratio_mismatch and k1.attribution_complete and k1.media == "email"


def test_a_campaign_without_a_control_group_is_no_control(hand_case):
    k2 = hand_case.set_index("campaign_id").loc["K2"]
    assert (k2.contacted, k2.control, k2.conversions_contacted) == (3, 0, 2)  # A1's S1 (4 h later), C1's S11
    assert k2.verdict == "no_control" and k2.media == "catalog"
    assert pd.isna(k2.lift_abs) and pd.isna(k2.p_value) and pd.isna(k2.incremental_revenue)
    assert pd.isna(k2.sample_ratio_p_value)


# ---------------------------------------------------------------------------------- against the generator's truth

LARGE = 1000  # contacted customers: campaigns this size are judged against their true lift


@pytest.fixture(scope="module", params=[1, 2], ids=["seed1", "seed2"])
def measured_against_truth(request, tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    """20,000 generated people: every campaign's measurement beside its truth (truth/campaign_effects.csv)."""
    folder = tmp_path_factory.mktemp(f"campaigns_seed{request.param}")
    generate(20_000, seed=request.param, out=folder)
    result = run_pipeline(folder / "raw", folder / "warehouse.duckdb")
    assert result.success
    with duckdb.connect(str(folder / "warehouse.duckdb"), read_only=True) as connection:
        measured = connection.execute("select * from marts.campaign_performance").df()
    truth = pd.read_csv(folder / "truth" / "campaign_effects.csv")
    return measured.merge(truth, on="campaign_id", suffixes=("", "_true"), validate="one_to_one")


def test_generated_campaigns_are_realistic_in_size_and_split(measured_against_truth):
    both = measured_against_truth
    assert (both["contacted_true"] + both["control_true"] >= LARGE).sum() >= 20
    # Identity resolution finds the generator's people: the groups are the simulated ones.
    assert (both["contacted"] == both["contacted_true"]).mean() > 0.95
    assert (both["control"] == both["control_true"]).mean() > 0.95
    assert set(both["verdict"]) >= {"positive", "not_significant", "no_control"}


def test_the_lift_interval_covers_the_true_lift_of_large_campaigns(measured_against_truth):
    large = measured_against_truth[
        (measured_against_truth["contacted"] >= LARGE) & (measured_against_truth["verdict"] != "no_control")
    ]
    covered = (large["lift_abs_ci_low"] <= large["true_lift_abs"]) & (
        large["true_lift_abs"] <= large["lift_abs_ci_high"]
    )
    assert len(large) >= 15 and covered.mean() >= 0.85


def test_total_incremental_revenue_is_within_two_standard_errors_of_the_truth(measured_against_truth):
    measured = measured_against_truth[measured_against_truth["verdict"] != "no_control"]
    standard_error = np.sqrt((measured["incremental_revenue_se"] ** 2).sum())
    error = measured["incremental_revenue"].sum() - measured["true_incremental_revenue"].sum()
    assert abs(error) <= 2 * standard_error
    assert measured["true_incremental_revenue"].sum() > 0  # the campaigns did bring money


def test_campaigns_simulated_without_effect_come_out_not_significant(measured_against_truth):
    """A 95 % interval excludes a true lift of 0 in 5 % of campaigns without effect: no more of them may come
    out significant than a 5 % rate gives with 99 % probability (2 of 9; 9 of 9 would demand luck)."""
    without = measured_against_truth[
        ~measured_against_truth["has_effect"] & (measured_against_truth["verdict"] != "no_control")
    ]
    significant = int((without["verdict"] != "not_significant").sum())
    assert len(without) >= 3 and significant <= stats.binom.ppf(0.99, len(without), 0.05)
    assert (without["true_lift_abs"] == 0).all()


def test_offline_media_are_measured_by_match_back_without_response_codes(measured_against_truth):
    offline = measured_against_truth[measured_against_truth["media"].isin(["catalog", "direct_mail"])]
    measured = offline[offline["verdict"] != "no_control"]
    # Their conversions come from purchases in any store: far more than the few coupon responses.
    assert measured["conversions_contacted"].sum() > 5 * measured["responders"].sum()
    assert (measured["incremental_conversions"].sum()) > 0
