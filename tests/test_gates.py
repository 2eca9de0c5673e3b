"""The data-quality gates in real Dagster runs: a failed raw gate stops everything after it, names the
expectation and column with a row count (no values), quarantines the rows, and keeps failing until the file
is fixed."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import dagster as dg
import duckdb

from dagster_project.lib import gates
from dagster_project.lib.contracts import FAMILIES_BY_NAME
from dagster_project.lib.expectations import GateResult
from dagster_project.lib.ingest import load_family
from dagster_project.lib.settings import Settings
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


def test_a_raw_file_validated_in_chunks_gets_the_verdict_of_the_whole_file(tmp_path: Path, monkeypatch):
    """A big file is validated in batches of RAW_GATE_CHUNK_ROWS rows of the suite's columns: the verdict,
    the counts and the quarantined rows are those of validating it whole."""
    bad_rows = {3, 2_500, 4_999}  # in the first, second and third batch of 2,048 rows
    lines = ["order_id,source_customer_id,purchased_at,amount,channel_note"]
    lines += [
        f"W{row},c{row},2025-12-01,{IMPLAUSIBLE if row in bad_rows else '10.00'},x" for row in range(1, 5_001)
    ]
    web = tmp_path / "raw" / "purchases" / "web"
    web.mkdir(parents=True)
    (web / "orders.csv").write_text("\n".join(lines) + "\n")
    parameters = gates.raw_parameters(Settings.load(environ={}), datetime(2026, 1, 1))

    def gate(chunk_rows: int, warehouse: Path) -> tuple[GateResult, list[tuple]]:
        monkeypatch.setattr(gates, "RAW_GATE_CHUNK_ROWS", chunk_rows)
        with duckdb.connect(str(warehouse)) as connection:
            gate = gates.RawGate.for_family("purchases", parameters)
            load = load_family(connection, tmp_path / "raw", FAMILIES_BY_NAME["purchases"], 0.05, gate=gate)
            [result] = load.verdicts
            quarantined = connection.execute(
                "select row_number, column_name, value, raw_record from raw._quarantine order by row_number"
            ).fetchall()
        return result, quarantined

    chunked, chunked_quarantine = gate(2_048, tmp_path / "chunked.duckdb")
    whole, whole_quarantine = gate(1_000_000, tmp_path / "whole.duckdb")

    assert not chunked.success
    assert chunked.rows == whole.rows == 5_000
    assert chunked.as_dict() == whole.as_dict()
    assert [failure.describe() for failure in chunked.failures] == [
        "amount: expect_column_values_to_be_between failed on 3 of 5000 rows"
    ]
    assert sorted(chunked.failures[0].unexpected_rows) == sorted(bad_rows)
    assert [row[:3] for row in chunked_quarantine] == [row[:3] for row in whole_quarantine]
    assert [row[:3] for row in chunked_quarantine] == [
        (row, "amount", "99999999999.0") for row in sorted(bad_rows)
    ]
    record = json.loads(chunked_quarantine[1][3])  # the whole record is kept, a missing value as null
    assert (record["order_id"], record["amount"], record["quantity"]) == ("W2500", "99999999999.0", None)
