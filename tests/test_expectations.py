"""Every expectation suite passes a good batch and fails a bad one, naming the column and counting rows;
suites that cannot be used as written are refused; the raw gate's vocabulary key equals dbt's."""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from great_expectations.execution_engine import pandas_execution_engine

from dagster_project.defs.resources import DBT_PROJECT_DIR, dbt_executable
from dagster_project.lib import dbt_builds, gates
from dagster_project.lib.expectations import SuiteError, load_suite, suite_path, validate
from dagster_project.lib.settings import Settings

NOW = datetime(2026, 1, 15, tzinfo=UTC).replace(tzinfo=None)
DAY = pd.Timestamp("2025-06-01 10:00:00")

# For each suite: one good row, and bad rows, each breaking one expectation on the named column.
CASES: dict[str, tuple[dict, list[tuple[dict, str]]]] = {
    "raw_purchases": (
        {
            "order_id": "o1",
            "source_customer_id": "c1",
            "purchased_at": DAY,
            "amount": 129.9,
            "quantity": 1,
            "unit_cost": 50.0,
            "store_type": "Loja Própria",
        },
        [
            ({"amount": 99_999_999_999.0}, "amount"),
            ({"amount": None}, "amount"),
            ({"purchased_at": pd.Timestamp("2027-01-01")}, "purchased_at"),
            ({"order_id": None}, "order_id"),
            ({"quantity": -2}, "quantity"),
        ],
    ),
    "raw_customers": (
        {
            "source_customer_id": "c1",
            "email": "ana@example.com",
            "birth_date": pd.Timestamp("1980-02-03"),
            "created_at": DAY,
            "updated_at": DAY,
        },
        [
            ({"source_customer_id": None}, "source_customer_id"),
            ({"birth_date": pd.Timestamp("2030-01-01")}, "birth_date"),
            ({"email": "no at sign"}, "email"),
        ],
    ),
    "raw_service_interactions": (
        {
            "interaction_id": "p1",
            "source_customer_id": "c1",
            "occurred_at": DAY,
            "channel": "Telefone",
            "interaction_type": "Reclamação",
            "handled_by": "agent",
            "duration_seconds": 30,
            "resolved_at": DAY + pd.Timedelta(hours=1),
        },
        [
            ({"channel": "pombo correio"}, "channel_code"),
            ({"duration_seconds": -1}, "duration_seconds"),
            ({"resolved_at": DAY - pd.Timedelta(days=1)}, "resolved_at, occurred_at"),
        ],
    ),
    "raw_campaigns": (
        {
            "campaign_id": "k1",
            "media": "email",
            "objective": "retention",
            "cost_per_contact": 0.02,
            "start_date": DAY.normalize(),
            "end_date": DAY.normalize(),
            "planned_control_share": 0.1,
        },
        [
            ({"media": "zeppelin"}, "media_code"),
            ({"cost_per_contact": -1.0}, "cost_per_contact"),
            ({"planned_control_share": 0.95}, "planned_control_share"),
            ({"end_date": (DAY - pd.Timedelta(days=3)).normalize()}, "end_date, start_date"),
        ],
    ),
    "raw_campaign_contacts": (
        {
            "campaign_id": "k1",
            "source_customer_id": "c1",
            "contacted_at": DAY,
            "responded_at": DAY,
            "response": "accepted",
        },
        [({"contacted_at": None}, "contacted_at"), ({"response": "maybe later"}, "response_code")],
    ),
    "raw_consents": (
        {"source_customer_id": "c1", "channel": "E-mail", "status": "opt-out", "recorded_at": DAY},
        [({"status": "nao quero mais"}, "status_code"), ({"channel": "carrier pigeon"}, "channel_code")],
    ),
    "raw_erasure_requests": (
        {
            "request_id": "LGPD-1",
            "email": "a@b.com.br",
            "requested_at": DAY,
            "legal_basis": "LGPD Art. 18 VI",
        },
        [
            ({"request_id": None}, "request_id"),
            ({"requested_at": pd.Timestamp(NOW + timedelta(days=3))}, "requested_at"),
        ],
    ),
    "raw_products": (
        {"product_id": "p1", "list_price": 10.0, "unit_cost": 4.0},
        [({"product_id": None}, "product_id"), ({"list_price": -3.0}, "list_price")],
    ),
    "customer_clv": (
        {
            "customer_id": 1,
            "p_alive": 0.8,
            "clv": 12.5,
            "expected_purchases": 1.2,
            "expected_avg_spend": 40.0,
            "margin_rate": 0.3,
        },
        [({"p_alive": 1.2}, "p_alive"), ({"clv": -0.01}, "clv"), ({"customer_id": None}, "customer_id")],
    ),
    "customer_rfmt": (
        {
            "customer_id": 1,
            "r_score": 5,
            "f_score": 4,
            "m_score": 3,
            "t_score": 1,
            "rfm_segment": "Champions",
            "recency_days": 3,
            "frequency": 2,
            "tenure_days": 100,
        },
        [
            ({"r_score": 6}, "r_score"),
            ({"rfm_segment": "Best"}, "rfm_segment"),
            ({"frequency": 0}, "frequency"),
        ],
    ),
    "customer_value": (
        {"customer_id": 1, "value_tier": "maintain", "profit": 10.0, "clv": 3.0},
        [({"value_tier": "gold"}, "value_tier"), ({"profit": None}, "profit")],
    ),
    "segment": (
        {
            "customer_id": 1,
            "consent_status": "opt_in",
            "promotion_to_open_complaint": False,
            "has_formula_like_cell": False,
        },
        [
            ({"consent_status": "opt_out"}, "consent_status"),
            ({"promotion_to_open_complaint": True}, "promotion_to_open_complaint"),
            ({"has_formula_like_cell": True}, "has_formula_like_cell"),
            ({"customer_id": 1}, "customer_id"),
        ],
    ),
    "customer_360": (
        {
            "customer_id": 1,
            "r_score": 5,
            "f_score": 5,
            "m_score": 5,
            "t_score": 5,
            "rfm_segment": "Champions",
            "p_alive": 0.9,
            "clv": 100.0,
            "orders": 3,
            "value_tier": "most_valuable",
            **{f"consent_{channel}": "opt_in" for channel in ["email", "sms", "whatsapp", "phone", "push"]},
            "consent_direct_mail": None,
        },
        [({"consent_email": "yes"}, "consent_email"), ({"p_alive": -0.1}, "p_alive")],
    ),
}
MEASURED = {  # a measured campaign (or campaign and segment): 400 contacted, 40 in control
    "campaign_id": "k1", "source_system": "crm", "media": "email", "contacted": 400, "control": 40,
    "responders": 8, "response_rate": 0.02, "conversions_contacted": 60, "conversions_control": 4,
    "conversion_rate_contacted": 0.15, "conversion_rate_control": 0.1, "lift_abs": 0.05, "lift_abs_ci_low": -0.06,
    "lift_abs_ci_high": 0.12, "p_value": 0.4, "verdict": "not_significant",
}  # fmt: skip
MEASURED_FAULTS = [
    ({"conversion_rate_contacted": 1.5}, "conversion_rate_contacted"),
    ({"lift_abs_ci_low": 0.07}, "lift_abs, lift_abs_ci_low"),
    ({"lift_abs_ci_high": 0.01}, "lift_abs_ci_high, lift_abs"),
    ({"verdict": "great"}, "verdict"),
    ({"conversions_control": 41}, "control, conversions_control"),
]
CASES |= {
    "dim_campaigns": (
        {"campaign_id": "k1", "source_system": "crm", "media": "sms", "planned_control_share": 0.1,
         "actual_control_share": 0.11, "cost_per_contact": 0.06, "contacted": 90, "control": 11},
        [({"actual_control_share": 1.2}, "actual_control_share"), ({"media": None}, "media")],
    ),
    "campaign_performance": (
        {**MEASURED, "sample_ratio_p_value": 0.9, "planned_control_share": 0.1, "control_records_contacted": 0},
        [
            *MEASURED_FAULTS,
            ({"control": 500, "conversions_control": 4}, "contacted, control"),
            ({"control_records_contacted": 2}, "control_records_contacted"),
            ({"media": None}, "media"),
        ],
    ),
    "campaign_performance_by_segment": (
        {**MEASURED, "rfm_segment_at_contact": "Champions", "value_tier_at_contact": "unknown"},
        MEASURED_FAULTS,
    ),
    "media_performance": (
        {"media": "email", "period_start": pd.Timestamp("2025-01-01"), "response_rate": 0.01, "pooled_lift_abs": 0.01,
         "pooled_lift_abs_ci_low": 0.0, "pooled_lift_abs_ci_high": 0.02, "contacted": 1000, "measured_contacted": 900,
         "campaigns": 3, "campaigns_with_control": 2},
        [({"pooled_lift_abs_ci_high": 0.0}, "pooled_lift_abs_ci_high, pooled_lift_abs"),
         ({"measured_contacted": 1001}, "contacted, measured_contacted")],
    ),
    "service_sales_attribution": (
        {"channel": "chat", "handled_by": "bot", "interaction_type": "information",
         "month": pd.Timestamp("2025-01-01"), "contacts": 10, "customers": 8, "purchases_after": 3,
         "purchases_before": 2, "buying_share_after": 0.3, "buying_share_before": 0.2,
         "new_product_types_per_contact": 0.1},
        [({"customers": 11}, "contacts, customers"), ({"buying_share_after": 1.1}, "buying_share_after")],
    ),
    "dim_households": (
        {"household_id": 1, "members": 2, "product_types_held_count": 3, "orders": 5},
        [({"members": 0}, "members")],
    ),
    "household_value": (
        {"month": pd.Timestamp("2025-01-01"), "households": 100, "buying_households": 30,
         "product_types_per_household": 2.5},
        [({"buying_households": 101}, "households, buying_households")],
    ),
    "customer_next_best_offer": (
        {"customer_id": 1, "eligibility": "eligible", "is_eligible": True, "offer_product_type": "moda",
         "expected_incremental_profit": 1.5},
        [
            ({"eligibility": "maybe"}, "eligibility"),
            ({"offer_product_type": None}, "offer_product_type"),
            ({"expected_incremental_profit": -0.2}, "expected_incremental_profit"),
            ({"eligibility": "open_complaint", "is_eligible": False}, "offer_product_type"),
        ],
    ),
}  # fmt: skip


def run_suite(name: str, rows: list[dict]) -> object:
    suite = load_suite(suite_path(name))
    frame = pd.DataFrame(rows, index=pd.RangeIndex(1, len(rows) + 1, name="_row_number"))
    frame = gates.with_vocabulary_codes(frame, dict(suite.meta.get("vocabulary", {})))
    parameters = {**gates.raw_parameters(Settings.load({}), NOW), "min_rows": None, "max_rows": None}
    return validate(frame, suite, name, parameters, failing_rows=True)


def test_every_suite_file_has_a_case_here():
    files = {path.stem for path in suite_path("x").parent.glob("*.json")}
    assert files == set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_good_batch_passes(name):
    good, _ = CASES[name]
    result = run_suite(name, [good, {**good, **_other_keys(good)}])
    assert result.success, result.summary()
    assert result.rows == 2 and len(result.outcomes) == len(
        json.loads(suite_path(name).read_text())["expectations"]
    )


def test_gx_validates_without_fingerprinting_the_batch(monkeypatch):
    """GX's MD5 of every cell (batch markers only) is skipped: validation runs, the fingerprint does not. Fails
    if a GX upgrade fingerprints batches by another path than the threshold the expectations module sets."""
    fingerprinted = []
    fingerprint = pandas_execution_engine.hash_pandas_dataframe
    monkeypatch.setattr(
        pandas_execution_engine,
        "hash_pandas_dataframe",
        lambda frame: fingerprinted.append(len(frame)) or fingerprint(frame),
    )
    good, bad = CASES["raw_purchases"]
    assert run_suite("raw_purchases", [good, {**good, **_other_keys(good)}]).success
    assert not run_suite("raw_purchases", [good, {**good, **_other_keys(good), **bad[0][0]}]).success
    assert fingerprinted == []


@pytest.mark.parametrize(
    ("name", "change", "column"),
    [(name, change, column) for name, (_, bad) in CASES.items() for change, column in bad],
)
def test_a_bad_row_fails_its_expectation_with_the_column_and_row_count(name, change, column):
    good, _ = CASES[name]
    result = run_suite(
        name, [good, {**good, **_other_keys(good), **change}, {**good, **_other_keys(good, 2)}]
    )
    assert not result.success
    failures = {failure.column: failure for failure in result.failures}
    assert column in failures, result.summary()
    failure = failures[column]
    assert failure.unexpected_count in (1, 2, None)  # 2: both rows of a duplicate; None: table-level
    if failure.unexpected_count == 1:
        assert failure.unexpected_rows == (2,)  # the second row, as numbered in the batch
    assert "99999999999" not in result.summary()  # counts, never values


def _other_keys(good: dict, n: int = 1) -> dict:
    """A second distinct row: unique keys get another value."""
    keys = {
        "customer_id": 1 + n, "order_id": f"o{1 + n}", "product_id": f"p{1 + n}", "campaign_id": f"k{1 + n}",
        "household_id": 1 + n, "month": pd.Timestamp("2025-01-01") + pd.DateOffset(months=n),
        "period_start": pd.Timestamp("2025-01-01") + pd.DateOffset(years=n),
    }  # fmt: skip
    return {key: value for key, value in keys.items() if key in good}


def test_the_row_count_band_fails_a_table_that_halved():
    good, _ = CASES["customer_clv"]
    suite = load_suite(suite_path("customer_clv"))
    frame = pd.DataFrame([{**good, "customer_id": n} for n in range(10)])
    assert validate(frame, suite, "t", {"min_rows": 5, "max_rows": 41}).success
    shrunk = validate(frame.head(4), suite, "t", {"min_rows": 5, "max_rows": 41})
    assert [failure.expectation for failure in shrunk.failures] == ["expect_table_row_count_to_be_between"]
    assert "observed 4" in shrunk.summary()


def test_the_row_count_band_starts_anew_with_new_dbt_code():
    """The band compares a table with the last passed run that built the same dbt code and settings: after an
    upgrade that redefines a segment, its first run is not held to the old definition's size."""
    with duckdb.connect() as connection:
        gates.ensure_gate_tables(connection)
        dbt_builds.start_build(connection, "dbt_models", "code-a", False, "run-a", datetime(2025, 1, 1))
        connection.execute(
            f"insert into {gates.GATE_LOG} values ('run-a', 'segment', 'segments.s', true, 1000, 6, '[]', "
            "'2025-01-01 06:00:00')"
        )
        assert gates.row_count_band(connection, "segments.s", "code-a") == {"min_rows": 490, "max_rows": 2010}
        assert gates.row_count_band(connection, "segments.s", "code-b") == {
            "min_rows": None,
            "max_rows": None,
        }
        assert gates.row_count_band(connection, "segments.s") == {"min_rows": 490, "max_rows": 2010}


def test_a_row_condition_reads_the_columns_it_names_and_not_its_string_values(tmp_path: Path, monkeypatch):
    """A suite may filter rows (`row_condition`): the gate reads the columns the condition names, and a quoted
    value in it ('email') is no column."""
    (tmp_path / "filtered.json").write_text(json.dumps({"name": "filtered", "expectations": [{
        "type": "expect_column_values_to_be_between",
        "kwargs": {"column": "contacted", "min_value": 1, "row_condition": 'media == "email" and planned > 0',
                   "condition_parser": "pandas"},
    }]}))  # fmt: skip
    monkeypatch.setattr(gates, "suite_path", lambda name: tmp_path / f"{name}.json")
    with duckdb.connect() as connection:
        connection.execute(
            "create table campaigns as select * from (values ('email', 0.1, 0), ('sms', 0.1, 0), ('email', 0, 0)) "
            "as t(media, planned, contacted)"
        )
        result = gates.gate_table(connection, "campaigns", "filtered")
    assert not result.success and result.rows == 3
    assert [(failure.column, failure.unexpected_count) for failure in result.failures] == [("contacted", 1)]


@pytest.mark.parametrize(
    ("expectation", "message"),
    [
        (  # GX 1.24 logs an unknown type and drops it from the suite: only the count shows it
            {"type": "expect_column_values_to_be_nul", "kwargs": {"column": "a"}},
            "2 expectations in the file but 1 loaded",
        ),
        (
            {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "a", "mostly": "most"}},
            "mostly",
        ),
    ],
)
def test_a_suite_with_a_misspelt_or_invalid_expectation_is_refused(tmp_path: Path, expectation, message):
    path = tmp_path / "broken.json"
    good = {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "b"}}
    path.write_text(json.dumps({"name": "broken", "expectations": [good, expectation]}))
    with pytest.raises(SuiteError, match=message):
        load_suite(path)


def test_vocabulary_keys_equal_the_dbt_macro(tmp_path):
    # The macro as dbt renders it for DuckDB (it calls the engine's own macros of dbt/macros/portable.sql).
    compiled = subprocess.run(
        [
            dbt_executable(),
            "compile",
            "--quiet",
            "--inline",
            "select {{ vocabulary_key('code') }}",
            "--target-path",
            str(tmp_path / "target"),
        ],
        cwd=DBT_PROJECT_DIR,
        check=True,
        capture_output=True,
        text=True,
        env={
            **os.environ,
            "DBT_PROFILES_DIR": str(DBT_PROJECT_DIR),
            "C360_WAREHOUSE": str(tmp_path / "w.duckdb"),
        },
    ).stdout.strip()
    sql = compiled.removeprefix("select ")
    codes = [
        "E-mail",
        " Loja Própria ",
        "RECLAMAÇÃO",
        "whats app!!",
        "call_center",
        "Telefone/Fixo",
        "ônibus",
    ]
    with duckdb.connect() as connection:
        from_dbt = [
            row[0]
            for row in connection.execute(
                f"select {sql} from unnest($codes) as t(code)", {"codes": codes}
            ).fetchall()
        ]
    assert [gates.vocabulary_key(code) for code in codes] == from_dbt


def test_an_expectation_on_a_column_the_batch_lacks_fails_and_says_why():
    suite = load_suite(suite_path("customer_value"))
    result = validate(pd.DataFrame({"customer_id": [1, 2]}), suite, "t", {"min_rows": None, "max_rows": None})
    assert not result.success
    lacking = {failure.column: failure.describe() for failure in result.failures}
    assert "could not be evaluated" in lacking["value_tier"]
    assert "customer_id" not in lacking


@pytest.mark.parametrize("unit", ["us", "ms", "s"])
@pytest.mark.parametrize(
    ("purchased_at", "failing_rows"),
    [
        ([DAY, pd.Timestamp("2027-01-01"), DAY], (2,)),
        ([DAY, pd.Timestamp("2027-01-01"), datetime(9999, 12, 31)], (2, 3)),  # beyond nanoseconds' range
    ],
)
def test_datetimes_in_any_unit_are_checked_row_by_row(unit, purchased_at, failing_rows):
    # DuckDB hands pandas microseconds; GX compares datetimes vectorised only in nanoseconds, so validate
    # converts a column whose every value fits, and leaves one that does not as delivered (checked all the same).
    good, _ = CASES["raw_purchases"]
    suite = load_suite(suite_path("raw_purchases"))
    frame = pd.DataFrame(
        [{**good, "order_id": f"o{row}"} for row in (1, 2, 3)], index=pd.RangeIndex(1, 4, name="_row_number")
    )
    frame["purchased_at"] = pd.Series(purchased_at, index=frame.index, dtype=f"datetime64[{unit}]")
    frame = gates.with_vocabulary_codes(frame, dict(suite.meta.get("vocabulary", {})))
    result = validate(frame, suite, "t", gates.raw_parameters(Settings.load({}), NOW), failing_rows=True)
    assert [(failure.column, failure.unexpected_rows) for failure in result.failures] == [
        ("purchased_at", failing_rows)
    ]


@pytest.mark.parametrize(
    ("dtype", "r_scores"), [("int32", [5, 6, 5]), ("Int32", [5, 6, None]), ("Float64", [5.0, 6.0, None])]
)
def test_numbers_of_any_width_or_nullability_are_checked_row_by_row(dtype, r_scores):
    # DuckDB hands out int32 scores and nullable (masked) numbers, which GX compares one value at a time
    # unless validate converts them; a missing score is no failure of `between`.
    good, _ = CASES["customer_360"]
    suite = load_suite(suite_path("customer_360"))
    frame = pd.DataFrame(
        [{**good, "customer_id": row} for row in (1, 2, 3)], index=pd.RangeIndex(1, 4, name="_row")
    )
    frame["r_score"] = pd.Series(r_scores, index=frame.index, dtype=dtype)
    result = validate(frame, suite, "t", {"min_rows": None, "max_rows": None}, failing_rows=True)
    assert [
        (failure.column, failure.unexpected_count, failure.unexpected_rows) for failure in result.failures
    ] == [("r_score", 1, (2,))]


def test_the_mart_suites_take_rfm_segments_and_value_tiers_from_the_seeds():
    """customer_value's tiers and customer_rfmt's segments are the seeds' (service_tiers.csv, rfm_segments.csv),
    passed to the suites as parameters: a tier the seed does not name fails, and one it names passes."""
    from dagster_project.lib.expectations import seed_parameters

    parameters = seed_parameters()
    assert parameters["value_tiers"] == ["most_valuable", "most_growable", "maintain", "below_zero"]
    assert parameters["rfm_segments"][0] == "Champions" and len(parameters["rfm_segments"]) == 11
    suite = load_suite(suite_path("customer_value"))
    frame = pd.DataFrame({"value_tier": [*parameters["value_tiers"], "platinum"]})

    def tier_in_set(extra: dict) -> list[tuple[bool, int | None]]:
        outcomes = validate(frame, suite, "t", {"min_rows": None, "max_rows": None, **extra}).outcomes
        return [
            (outcome.success, outcome.unexpected_count)
            for outcome in outcomes
            if outcome.column == "value_tier" and outcome.expectation == "expect_column_values_to_be_in_set"
        ]

    assert tier_in_set({}) == [(False, 1)]
    assert tier_in_set({"value_tiers": [*parameters["value_tiers"], "platinum"]}) == [(True, 0)]
