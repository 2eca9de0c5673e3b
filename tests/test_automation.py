"""The schedule and the new-extract sensor, evaluated as Dagster evaluates them (no run is launched)."""

from __future__ import annotations

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb

from dagster_project.defs.automation import new_extracts
from dagster_project.defs.ingest import freshness_checks, ingest_asset
from dagster_project.defs.resources import SettingsResource, resources
from dagster_project.lib.contracts import FAMILIES_BY_NAME
from dagster_project.lib.ingest import load_family


def evaluate(raw: Path, cursor: str | None = None) -> dg.SensorResult:
    context = dg.build_sensor_context(
        cursor=cursor,
        resources={"settings": SettingsResource(overrides={"raw_dir": str(raw)})},
        instance=dg.DagsterInstance.ephemeral(),
    )
    return new_extracts(context)


def test_a_new_delivery_starts_one_run_and_the_same_files_start_none(tmp_path):
    web = tmp_path / "raw" / "purchases" / "web"
    web.mkdir(parents=True)
    (web / "day1.csv").write_text("order_id,source_customer_id,purchased_at,amount\nW1,c1,2025-12-01,10.00\n")

    first = evaluate(tmp_path / "raw")
    assert len(first.run_requests) == 1 and first.run_requests[0].run_key.startswith("extracts-")
    assert first.run_requests[0].tags["c360/new_files"] == "purchases/web/day1.csv"

    same = evaluate(tmp_path / "raw", first.cursor)
    assert same.run_requests == [] and same.skip_reason
    shutil.copy(web / "day1.csv", web / "day1_again.csv")  # the same delivery under another name
    renamed = evaluate(tmp_path / "raw", same.cursor)
    assert renamed.run_requests == []

    (web / "day2.csv").write_text("order_id,source_customer_id,purchased_at,amount\nW2,c2,2025-12-02,20.00\n")
    second = evaluate(tmp_path / "raw", renamed.cursor)
    assert len(second.run_requests) == 1
    assert second.run_requests[0].run_key != first.run_requests[0].run_key
    assert second.run_requests[0].tags["c360/new_files"] == "purchases/web/day2.csv"


def test_the_code_location_has_a_daily_schedule_in_sao_paulo_time_and_the_sensor():
    from dagster_project.definitions import defs

    schedule = defs.resolve_schedule_def("daily_refresh")
    assert schedule.execution_timezone == "America/Sao_Paulo" and schedule.cron_schedule == "0 6 * * *"
    assert defs.resolve_sensor_def("new_extracts").job_name == schedule.job_name == "materialize_everything"


def test_the_freshness_check_warns_when_no_new_extract_arrived_in_time_and_never_blocks(tmp_path):
    """The check judges when the family's newest file loaded (the ledger), not when the run happened."""
    purchases = FAMILIES_BY_NAME["purchases"]
    web = tmp_path / "raw" / "purchases" / "web"
    web.mkdir(parents=True)
    (web / "day1.csv").write_text("order_id,source_customer_id,purchased_at,amount\nW1,c1,2025-12-01,10.00\n")
    warehouse = tmp_path / "warehouse.duckdb"
    three_days_ago = datetime.now(UTC).replace(tzinfo=None) - timedelta(days=3)
    with duckdb.connect(str(warehouse)) as connection:
        load_family(connection, tmp_path / "raw", purchases, 0.05, loaded_at=three_days_ago)

    def run() -> dg.AssetCheckEvaluation:
        result = dg.materialize(
            [ingest_asset(purchases), *freshness_checks(purchases)],
            resources=resources({"raw_dir": str(tmp_path / "raw"), "warehouse": str(warehouse)}),
        )
        assert result.success  # a stale family warns; the run goes on
        [evaluation] = result.get_asset_check_evaluations()
        return evaluation

    stale = run()  # nothing new delivered: the newest file is 3 days old, 36 hours are allowed
    assert not stale.passed and stale.severity == dg.AssetCheckSeverity.WARN
    assert "overdue" in stale.description
    last_update = stale.metadata["dagster/last_updated_timestamp"].value
    assert abs(last_update - three_days_ago.replace(tzinfo=UTC).timestamp()) < 1

    (web / "day2.csv").write_text("order_id,source_customer_id,purchased_at,amount\nW2,c2,2025-12-02,20.00\n")
    fresh = run()
    assert fresh.passed and "currently fresh" in fresh.description


def test_every_raw_family_has_a_freshness_check_and_a_sensor_evaluates_them():
    from dagster_project.definitions import defs

    checked = {
        key.asset_key.path[-1]
        for checks in defs.asset_checks or []
        for key in checks.check_keys
        if key.name.startswith("freshness")
    }
    assert checked == {
        name for name, family in FAMILIES_BY_NAME.items() if family.fresh_within_hours is not None
    }
    assert checked == set(FAMILIES_BY_NAME) - {"erasure_requests"}  # requests come when they come
    assert defs.resolve_sensor_def("raw_freshness") is not None
