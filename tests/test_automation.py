"""The schedule and the new-extract sensor, evaluated as Dagster evaluates them (no run is launched)."""

from __future__ import annotations

import shutil
from pathlib import Path

import dagster as dg

from dagster_project.defs.automation import new_extracts
from dagster_project.defs.resources import SettingsResource


def evaluate(raw: Path, cursor: str | None = None) -> dg.SensorResult:
    context = dg.build_sensor_context(
        cursor=cursor, resources={"settings": SettingsResource(overrides={"raw_dir": str(raw)})}
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
