"""Retention (lib/retention.py, the asset exports/retention): old export folders, validation reports, gate log
rows and Dagster runs go; the newest export folder stays, whatever its age; every removal is logged."""

from __future__ import annotations

import json
import os
import sqlite3
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb

from dagster_project.definitions import materialize_in_process

RETENTION = dg.AssetSelection.assets(dg.AssetKey(["exports", "retention"]))


def export_folder(export_dir: Path, as_of: str, created_at: datetime) -> Path:
    folder = export_dir / as_of
    folder.mkdir(parents=True)
    (folder / "champions.csv").write_text("customer_id\n1\n", encoding="utf-8")
    (folder / "manifest.json").write_text(
        json.dumps({"as_of": as_of, "created_at": created_at.isoformat(timespec="seconds"), "segments": []}),
        encoding="utf-8",
    )
    return folder


def test_retention_removes_old_outputs_keeps_the_newest_export_and_logs_each_removal(tmp_path):
    now = datetime.now(UTC).replace(tzinfo=None)
    warehouse, export_dir = tmp_path / "warehouse.duckdb", tmp_path / "exports"
    settings = {
        "raw_dir": str(tmp_path / "raw"),
        "warehouse": str(warehouse),
        "export_dir": str(export_dir),
        "serving": str(tmp_path / "serving.duckdb"),
        "retention_days": "30",
    }
    oldest = export_folder(export_dir, "2025-01-31", now - timedelta(days=400))
    old = export_folder(export_dir, "2025-06-30", now - timedelta(days=200))
    recent = export_folder(export_dir, "2026-11-30", now - timedelta(days=5))
    reports = export_dir / "validation"
    reports.mkdir()
    for name, age in (("old-run.md", 90), ("new-run.md", 1)):
        (reports / name).write_text("# gates\n", encoding="utf-8")
        moment = (now - timedelta(days=age)).replace(tzinfo=UTC).timestamp()
        os.utime(reports / name, (moment, moment))
    with duckdb.connect(str(warehouse)) as connection:
        connection.execute(
            "create schema raw; create table raw._gate_log (run_id varchar, suite varchar, target varchar, "
            "success boolean, rows bigint, expectations integer, failures json, checked_at timestamp)"
        )
        connection.execute(
            "insert into raw._gate_log values ('a', 's', 't', true, 1, 1, '[]', $old), "
            "('b', 's', 't', true, 1, 1, '[]', $old), ('c', 's', 't', true, 1, 1, '[]', $new)",
            {"old": now - timedelta(days=60), "new": now - timedelta(days=2)},
        )

    (tmp_path / "dagster_home").mkdir()
    with dg.DagsterInstance.local_temp(str(tmp_path / "dagster_home")) as instance:
        first = materialize_in_process(settings, RETENTION, instance)
        assert first.success
        # The first run is made 100 days old (in Dagster's own run storage); the next removes it.
        with sqlite3.connect(tmp_path / "dagster_home" / "history" / "runs.db") as runs:
            runs.execute(
                "update runs set create_timestamp = ? where run_id = ?",
                ((now - timedelta(days=100)).isoformat(sep=" "), first.run_id),
            )
        second = materialize_in_process(settings, RETENTION, instance)
        assert second.success
        remaining_runs = {record.dagster_run.run_id for record in instance.get_run_records()}
    assert first.run_id not in remaining_runs and second.run_id in remaining_runs

    assert not oldest.exists() and not old.exists() and recent.exists()
    assert sorted(path.name for path in reports.iterdir()) == ["new-run.md"]
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        assert connection.execute("select run_id from raw._gate_log").fetchall() == [("c",)]
        logged = connection.execute(
            "select kind, name, removed_count from raw._retention_log order by kind, name"
        ).fetchall()
    assert logged == [
        ("dagster_run", first.run_id, 1),
        ("export_folder", "2025-01-31", 1),
        ("export_folder", "2025-06-30", 1),
        ("gate_log_rows", "raw._gate_log", 2),
        ("validation_report", "old-run.md", 1),
    ]
    removed = [
        materialization.metadata["removed"].value
        for result in (first, second)
        for materialization in result.asset_materializations_for_node("exports__retention")
    ]
    assert removed == [{"export_folder": 2, "gate_log_rows": 2, "validation_report": 1}, {"dagster_run": 1}]

    # A long pause: the newest export folder is older than the cutoff too, and stays (marketers take it).
    recent_manifest = json.loads((recent / "manifest.json").read_text(encoding="utf-8"))
    recent_manifest["created_at"] = (now - timedelta(days=90)).isoformat(timespec="seconds")
    (recent / "manifest.json").write_text(json.dumps(recent_manifest), encoding="utf-8")
    with dg.DagsterInstance.local_temp(str(tmp_path / "dagster_home")) as instance:
        assert materialize_in_process(settings, RETENTION, instance).success
    assert recent.exists()
