"""The data-quality gates in real Dagster runs: a failed raw gate stops everything after it, names the
expectation and column with a row count (no values), quarantines the rows, and keeps failing until the file
is fixed."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb

from tests.conftest import copy_of, run_pipeline

IMPLAUSIBLE = "99999999999.00"


def raw_gate_evaluation(result: dg.ExecuteInProcessResult, family: str) -> dg.AssetCheckEvaluation:
    return next(
        evaluation
        for evaluation in result.get_asset_check_evaluations()
        if evaluation.asset_key == dg.AssetKey(["raw", family]) and evaluation.check_name == "raw_gate"
    )


def snapshot(folder: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(folder)): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def test_an_implausible_amount_fails_the_raw_gate_and_nothing_after_it_runs(built_sample, tmp_path: Path):
    dataset = copy_of(built_sample[0], tmp_path / "built")
    exports = dataset / "exports"
    previous_exports = snapshot(exports)
    web = dataset / "raw" / "purchases" / "web"
    web.mkdir()
    (web / "late_orders.csv").write_text(
        "order_id,source_customer_id,purchased_at,amount\n"
        "W1,c1,2025-12-01,10.00\n"
        f"W2,c2,2025-12-02,{IMPLAUSIBLE}\n"
        "W3,c3,2025-12-03,30.00\n"
    )
    warehouse = dataset / "warehouse.duckdb"
    result = run_pipeline(dataset / "raw", warehouse)

    assert not result.success
    evaluation = raw_gate_evaluation(result, "purchases")
    assert not evaluation.passed
    assert evaluation.description == (
        "raw.purchases purchases/web/late_orders.csv: suite raw_purchases FAILED (11 expectations, 3 rows); "
        "amount: expect_column_values_to_be_between failed on 1 of 3 rows"
    )
    assert IMPLAUSIBLE.split(".")[0] not in str(evaluation.metadata)  # counts, never values
    assert raw_gate_evaluation(result, "customers").passed  # nothing new there
    materialized = {event.asset_key.path[0] for event in result.get_asset_materialization_events()}
    assert materialized == {"raw"}  # no dbt model, no CLV, nothing downstream
    report = exports / "validation" / f"{result.run_id}.md"
    now_exports = snapshot(exports)
    assert {name: content for name, content in now_exports.items() if not name.startswith("validation/")} == {
        name: content for name, content in previous_exports.items() if not name.startswith("validation/")
    }  # the previous segment files and manifest, untouched; no new export
    report = report.read_text()
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
        pending = connection.execute(
            "select count(*) from raw._load_log where status = 'loaded' and gate_status is null"
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
    assert pending == 0  # every other delivered file passed on the first run and is not checked again

    # The file is tried again, and fails again, until it is fixed; then its good rows load.
    again = run_pipeline(dataset / "raw", warehouse, selection="key:raw/purchases")
    assert not raw_gate_evaluation(again, "purchases").passed
    (web / "late_orders.csv").write_text(
        "order_id,source_customer_id,purchased_at,amount\nW1,c1,2025-12-01,10.00\nW3,c3,2025-12-03,30.00\n"
    )
    fixed = run_pipeline(dataset / "raw", warehouse, selection="key:raw/purchases")
    assert fixed.success and raw_gate_evaluation(fixed, "purchases").passed
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        loaded = connection.execute(
            "select order_id from raw.purchases where _source_file = 'purchases/web/late_orders.csv' order by 1"
        ).fetchall()
    assert loaded == [("W1",), ("W3",)]
