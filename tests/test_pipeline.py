"""End to end on the real Dagster, dbt and DuckDB: generated extracts -> raw -> staging."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections import defaultdict
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pytest

from dagster_project.defs.resources import DBT_PROJECT_DIR, dbt_executable
from dagster_project.lib.settings import Settings
from tests.conftest import copy_of, file_rows, run_pipeline


def raw_counts(warehouse: Path) -> dict[str, int]:
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        tables = connection.execute(
            "select table_name from information_schema.tables where table_schema = 'raw' and table_name[1] != '_'"
        ).fetchall()
        return {
            name: connection.execute(f'select count(*) from raw."{name}"').fetchone()[0] for (name,) in tables
        }


def failure_messages(result: dg.ExecuteInProcessResult) -> str:
    return "\n".join(
        str(event.event_specific_data.error) for event in result.all_events if event.is_step_failure
    )


@pytest.fixture(scope="module")
def built(
    built_sample: tuple[Path, dg.ExecuteInProcessResult],
) -> tuple[Path, Path, dg.ExecuteInProcessResult]:
    """The session's full run over the generated dataset: (raw folder, warehouse, result)."""
    folder, result = built_sample
    return folder / "raw", folder / "warehouse.duckdb", result


def test_a_full_run_loads_every_extract_row_and_builds_staging(built, generated_dataset):
    raw, warehouse, result = built
    assert result.success
    expected: dict[str, int] = defaultdict(int)
    for relative, rows in file_rows(generated_dataset).items():
        expected[relative.split("/")[0]] += rows
    assert raw_counts(warehouse) == {**dict(expected), "erasure_requests": 0}
    checks = result.get_asset_check_evaluations()
    assert len(checks) >= 20 and all(check.passed for check in checks)
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        assert connection.execute("select count(*) from raw._quarantine").fetchone() == (0,)
        assert (
            connection.execute("select count(*) from staging.stg_raw__purchases").fetchone()[0]
            == expected["purchases"]
        )
        unmapped = connection.execute(
            "select count(*) filter (where channel is null), count(*) filter (where interaction_type is null) "
            "from staging.stg_raw__service_interactions"
        ).fetchone()
        assert unmapped == (0, 0)
        store_types = connection.execute(
            "select source_system, list(distinct store_type order by store_type) from staging.stg_raw__purchases group by 1 order by 1"
        ).fetchall()
        assert store_types == [("ecommerce", ["ecommerce"]), ("loja", ["own_store", "partner_store"])]
        legacy_total = connection.execute(
            "select sum(amount) from raw.purchases where _source_system = 'loja'"
        ).fetchone()[0]
    # The legacy file parsed independently by pandas gives the same total to the cent.
    pandas_total = pd.read_csv(
        raw / "purchases/loja/vendas.csv", sep=";", decimal=",", thousands=".", encoding="latin-1"
    )["valor_total"].sum()
    assert float(legacy_total) == pytest.approx(pandas_total, abs=0.005)


def test_running_again_after_a_redelivery_under_a_new_name_adds_nothing(built_sample, tmp_path):
    folder = copy_of(built_sample[0], tmp_path / "again")
    raw, warehouse = folder / "raw", folder / "warehouse.duckdb"
    before = raw_counts(warehouse)
    shutil.copy(raw / "purchases/loja/vendas.csv", raw / "purchases/loja/vendas_reenvio.csv")
    shutil.copy(raw / "customers/crm/contacts.csv", raw / "customers/crm/contacts_copy.csv")
    # Ingest and its gates only: staging is views over raw, so its counts show any duplicate at once.
    again = run_pipeline(raw, warehouse, selection="group:ingest")
    assert again.success
    assert raw_counts(warehouse) == before
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        assert (
            connection.execute("select count(*) from staging.stg_raw__purchases").fetchone()[0]
            == before["purchases"]
        )


def test_a_purchases_file_without_amount_fails_the_run_and_builds_nothing_downstream(dataset, tmp_path):
    orders = pd.read_csv(dataset / "raw/purchases/ecommerce/orders.csv.gz").drop(columns=["amount"])
    orders.to_csv(dataset / "raw/purchases/ecommerce/orders.csv.gz", index=False)
    warehouse = tmp_path / "w.duckdb"
    result = run_pipeline(dataset / "raw", warehouse)
    assert not result.success
    message = failure_messages(result)
    assert str(dataset / "raw/purchases/ecommerce/orders.csv.gz") in message
    assert "missing required column 'amount'" in message
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        schemas = {
            row[0]
            for row in connection.execute("select schema_name from information_schema.schemata").fetchall()
        }
    assert "staging" not in schemas


def test_one_unparseable_date_quarantines_that_row_and_loads_the_rest(dataset, tmp_path):
    (dataset / "raw/purchases/web").mkdir()
    rows = [f"W{number},c{number},2025-12-{number:02d},{number}" for number in range(1, 31)]
    rows[1] = "W2,c2,2025-02-30,2"  # one date that does not exist, in 30 rows: under the 5% threshold
    (dataset / "raw/purchases/web/late.csv").write_text(
        "order_id,source_customer_id,purchased_at,amount\n" + "\n".join(rows)
    )
    warehouse = tmp_path / "w.duckdb"
    result = run_pipeline(dataset / "raw", warehouse, selection="key:raw/purchases")
    assert result.success
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        loaded = connection.execute(
            "select order_id from raw.purchases where _source_file = 'purchases/web/late.csv' order by 1"
        ).fetchall()
        quarantined = connection.execute(
            "select file_path, row_number, column_name, value from raw._quarantine"
        ).fetchall()
    assert len(loaded) == 29 and ("W2",) not in loaded
    assert quarantined == [("purchases/web/late.csv", 2, "purchased_at", "2025-02-30")]
    materialization = result.asset_materializations_for_node("raw__purchases")[0]
    assert materialization.metadata["rows_quarantined"].value == 1


def test_the_tests_left_to_make_test_pass_and_production_runs_leave_them_out(built_sample, tmp_path):
    """dbt/selectors.yml's checked_in_ci: the unit tests (they check the SQL on fixed inputs) and the data tests a
    production run need not repeat (seeds, segments, the offers' intermediate steps) run here, against a built
    warehouse, and pass; the production run ran none of them, and every other data test."""
    folder, _ = built_sample
    manifest = json.loads((DBT_PROJECT_DIR / "target" / "manifest.json").read_text())
    ran = {
        node["unique_id"]
        for step in (
            "dbt_identity_inputs",
            "dbt_models",
            "dbt_models_after_clv",
        )  # the run's dbt target folders, beside the warehouse
        for node in json.loads((folder / "warehouse_dbt" / step / "run_results.json").read_text())["results"]
    }
    warehouse = copy_of(folder, tmp_path / "built") / "warehouse.duckdb"
    settings = Settings.load({"warehouse": str(warehouse), "raw_dir": str(folder / "raw")})
    completed = subprocess.run(
        [dbt_executable(), "test", "--selector", "checked_in_ci", "--vars", json.dumps(settings.dbt_vars()),
         "--target-path", str(tmp_path / "dbt_target")],
        cwd=DBT_PROJECT_DIR, env={**os.environ, **settings.dbt_environment(), "DBT_PROFILES_DIR": str(DBT_PROJECT_DIR)},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert completed.returncode == 0, completed.stdout[-3000:]
    checked_in_ci = {
        node["unique_id"]
        for node in json.loads((tmp_path / "dbt_target" / "run_results.json").read_text())["results"]
        if node["status"] == "pass"
    }
    unit_tests = set(manifest["unit_tests"])
    data_tests = {uid for uid, node in manifest["nodes"].items() if node["resource_type"] == "test"}
    assert unit_tests <= checked_in_ci and len(unit_tests) >= 12
    seed_tests = {
        uid for uid in data_tests if manifest["nodes"][uid]["original_file_path"].startswith("seeds/")
    }
    assert seed_tests and seed_tests <= checked_in_ci
    assert any(node.startswith("model.") for node in ran) and not ran & checked_in_ci
    assert data_tests - checked_in_ci <= ran  # every other data test ran in production
    assert {"test.customer360.assert_profit_is_revenue_less_costs"} <= ran


def test_the_uniqueness_test_finds_a_repeated_key_and_nothing_else(built_sample, tmp_path):
    """The generic test unique_combination_of_columns, as the run compiled it for the identity keys: empty on
    the built warehouse, and the one repeated (record, key type, value) with its count once a row is doubled."""
    folder = copy_of(built_sample[0], tmp_path / "copy")
    run_results = json.loads((folder / "warehouse_dbt" / "dbt_models" / "run_results.json").read_text())
    (compiled,) = [
        node["compiled_code"]
        for node in run_results["results"]
        if ".unique_combination_of_columns_int_identity_keys_record_key" in node["unique_id"]
    ]
    with duckdb.connect(str(folder / "warehouse.duckdb")) as connection:
        assert connection.execute(compiled).fetchall() == []
        doubled = connection.execute(
            """
            insert into intermediate.int_identity_keys
            select * from intermediate.int_identity_keys order by record_key, key_type, key_value limit 1
            returning record_key, key_type, key_value
            """
        ).fetchone()
        assert connection.execute(compiled).fetchall() == [(*doubled, 2)]


def test_dbt_models_report_their_row_counts_to_dagster(built):
    _, warehouse, result = built
    counted = {}
    for step in ("dbt_identity_inputs", "dbt_models", "dbt_models_after_clv"):
        for event in result.asset_materializations_for_node(step):
            counted[tuple(event.asset_key.path)] = event.metadata["dagster/row_count"].value
    assert len(counted) > 30
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        for key in [("marts", "customer_360"), ("marts", "dim_customers"), ("staging", "stg_raw__purchases")]:
            assert (
                counted[key] == connection.execute(f"select count(*) from {'.'.join(key)}").fetchone()[0] > 0
            )
