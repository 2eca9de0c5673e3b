"""The data-quality gates in real Dagster runs: a failed raw gate stops everything after it, names the
expectation and column with a row count (no values), quarantines the rows, and keeps failing until the file
is fixed."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb

from tests.conftest import run_pipeline

IMPLAUSIBLE = "99999999999.00"


def raw_gate_evaluation(result: dg.ExecuteInProcessResult, family: str) -> dg.AssetCheckEvaluation:
    return next(
        evaluation
        for evaluation in result.get_asset_check_evaluations()
        if evaluation.asset_key == dg.AssetKey(["raw", family]) and evaluation.check_name == "raw_gate"
    )


def test_an_implausible_amount_fails_the_raw_gate_and_nothing_after_it_runs(dataset: Path, tmp_path: Path):
    web = dataset / "raw" / "purchases" / "web"
    web.mkdir()
    (web / "late_orders.csv").write_text(
        "order_id,source_customer_id,purchased_at,amount\n"
        "W1,c1,2025-12-01,10.00\n"
        f"W2,c2,2025-12-02,{IMPLAUSIBLE}\n"
        "W3,c3,2025-12-03,30.00\n"
    )
    warehouse, exports = tmp_path / "w.duckdb", tmp_path / "exports"
    result = run_pipeline(dataset / "raw", warehouse, export_dir=str(exports))

    assert not result.success
    evaluation = raw_gate_evaluation(result, "purchases")
    assert not evaluation.passed
    assert evaluation.description == (
        "raw.purchases purchases/web/late_orders.csv: suite raw_purchases FAILED (11 expectations, 3 rows); "
        "amount: expect_column_values_to_be_between failed on 1 of 3 rows"
    )
    assert IMPLAUSIBLE.split(".")[0] not in str(evaluation.metadata)  # counts, never values
    assert raw_gate_evaluation(result, "customers").passed  # the other families' files passed
    materialized = {event.asset_key.path[0] for event in result.get_asset_materialization_events()}
    assert materialized == {"raw"}  # no dbt model, no CLV, nothing downstream
    assert not list(exports.glob("*/*.csv"))
    report = next((exports / "validation").glob("*.md")).read_text()
    assert "| expect_column_values_to_be_between | amount | FAIL | 1 of 3 |" in report

    with duckdb.connect(str(warehouse), read_only=True) as connection:
        in_raw = connection.execute(
            "select count(*) from raw.purchases where _source_file = 'purchases/web/late_orders.csv'"
        ).fetchone()[0]
        quarantined = connection.execute(
            "select row_number, column_name, value, reason from raw._quarantine "
            "where file_path = 'purchases/web/late_orders.csv'"
        ).fetchall()
        status, message = connection.execute(
            "select status, message from raw._load_log where file_path = 'purchases/web/late_orders.csv'"
        ).fetchone()
        gated = connection.execute(
            "select count(*) from raw._load_log where status = 'loaded' and gate_status = 'passed'"
        ).fetchone()[0]
    assert in_raw == 0
    assert quarantined == [
        (
            2,
            "amount",
            "99999999999.0",
            "failed expectation expect_column_values_to_be_between (suite raw_purchases)",
        )
    ]
    assert status == "rejected" and "rejected by the raw gate" in message
    assert gated == 12  # every other delivered file passed and is not checked again

    # The file is tried again, and fails again, until it is fixed; then its good rows load.
    again = run_pipeline(dataset / "raw", warehouse, selection="key:raw/purchases", export_dir=str(exports))
    assert not raw_gate_evaluation(again, "purchases").passed
    (web / "late_orders.csv").write_text(
        "order_id,source_customer_id,purchased_at,amount\nW1,c1,2025-12-01,10.00\nW3,c3,2025-12-03,30.00\n"
    )
    fixed = run_pipeline(dataset / "raw", warehouse, selection="key:raw/purchases", export_dir=str(exports))
    assert fixed.success and raw_gate_evaluation(fixed, "purchases").passed
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        loaded = connection.execute(
            "select order_id from raw.purchases where _source_file = 'purchases/web/late_orders.csv' order by 1"
        ).fetchall()
    assert loaded == [("W1",), ("W3",)]
