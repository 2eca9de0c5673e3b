"""Delivery: the export folder and the serving file are put in place together; a failure before the end
leaves both as they were; a delivery interrupted between its renames is finished by the next run, and what
killed runs left half-written is removed."""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path

import duckdb
import pytest

from dagster_project.lib import delivery
from dagster_project.lib.delivery import deliver, journal_path, recover
from dagster_project.lib.exports import Segment, prepare, stage_exports
from dagster_project.lib.publish import stage_publication

EMAIL = Segment("champions", "", "email", "crm", ("customer_id", "full_name"), "service")


@pytest.fixture
def warehouse(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    connection.execute("create schema marts; create schema segments")
    connection.execute("create table marts.observation_window as select date '2025-12-31' as as_of")
    connection.execute(
        "create table marts.customer_consents (customer_id int, channel varchar, status varchar)"
    )
    connection.execute(
        "create table segments.champions as select * from (values (1, 'Ana'), (2, 'Bia')) t(customer_id, full_name)"
    )
    return connection


def run_delivery(warehouse, tmp_path: Path, run_id: str):
    return deliver(
        warehouse,
        tmp_path / "warehouse.duckdb",
        tmp_path / "exports",
        tmp_path / "serving.duckdb",
        date(2025, 12, 31),
        [prepare(warehouse, EMAIL)],
        {},
        run_id,
        datetime(2026, 1, 1),
    )


def state(tmp_path: Path) -> tuple[list[str], str]:
    """What a marketer and a BI user see: the exported file's lines and the serving file's run."""
    lines = (tmp_path / "exports" / "2025-12-31" / "champions.csv").read_text("utf-8-sig").splitlines()
    with duckdb.connect(str(tmp_path / "serving.duckdb"), read_only=True) as serving:
        run = serving.execute("select run_id from marts.publication").fetchone()[0]
    return lines, run


def test_a_delivery_that_fails_at_publishing_leaves_the_previous_exports_and_serving_file(
    warehouse, tmp_path, monkeypatch
):
    run_delivery(warehouse, tmp_path, "run-1")
    before = state(tmp_path)
    warehouse.execute("insert into segments.champions values (3, 'Caio')")

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(delivery, "stage_publication", full_disk)
    with pytest.raises(OSError, match="No space left"):
        run_delivery(warehouse, tmp_path, "run-2")
    assert state(tmp_path) == before  # the exports were not replaced either
    assert sorted(path.name for path in (tmp_path / "exports").iterdir()) == ["2025-12-31"]
    monkeypatch.undo()
    run_delivery(warehouse, tmp_path, "run-3")
    lines, run = state(tmp_path)
    assert (len(lines), run) == (4, "run-3")


def test_a_delivery_interrupted_between_its_renames_is_finished_by_the_next_run(warehouse, tmp_path):
    run_delivery(warehouse, tmp_path, "run-1")
    warehouse.execute("insert into segments.champions values (3, 'Caio')")
    # What deliver() had done when killed: both halves staged, the journal written, the serving file renamed,
    # the export folder not yet.
    prepared = [prepare(warehouse, EMAIL)]
    folder, target, _ = stage_exports(
        tmp_path / "exports", date(2025, 12, 31), prepared, {}, datetime(2026, 1, 2)
    )
    staged = stage_publication(
        warehouse, tmp_path / "serving.duckdb", datetime(2026, 1, 2), "run-2", None, prepared
    )
    journal = journal_path(tmp_path / "warehouse.duckdb")
    journal.write_text(
        json.dumps({"moves": [[str(staged.partial), str(staged.serving)], [str(folder), str(target)]]})
    )
    staged.partial.replace(staged.serving)
    lines, run = state(tmp_path)
    assert (len(lines), run) == (3, "run-2")  # the files of run 1, the BI file of run 2

    done = recover(tmp_path / "warehouse.duckdb", tmp_path / "exports", tmp_path / "serving.duckdb")
    assert done == [f"finished the delivery an interrupted run had begun ({journal.name})"]
    lines, run = state(tmp_path)
    assert (len(lines), run) == (4, "run-2")
    assert not journal.exists()
    assert sorted(path.name for path in (tmp_path / "exports").iterdir()) == ["2025-12-31"]


def test_what_killed_runs_left_half_written_is_removed(warehouse, tmp_path):
    run_delivery(warehouse, tmp_path, "run-1")
    (tmp_path / ".serving.duckdb.partial-0123").write_bytes(b"half a file")
    (tmp_path / ".serving.duckdb.partial-0123.wal").write_bytes(b"")
    (tmp_path / "exports" / ".2025-12-31.partial-4567").mkdir()
    (tmp_path / "exports" / ".2025-12-30.retired-89ab").mkdir()
    done = recover(tmp_path / "warehouse.duckdb", tmp_path / "exports", tmp_path / "serving.duckdb")
    assert len(done) == 4 and all(line.endswith("left by an interrupted run") for line in done)
    assert sorted(path.name for path in (tmp_path / "exports").iterdir()) == ["2025-12-31"]
    assert sorted(path.name for path in tmp_path.iterdir() if "serving" in path.name) == ["serving.duckdb"]
    assert recover(tmp_path / "warehouse.duckdb", tmp_path / "exports", tmp_path / "serving.duckdb") == []


def test_opt_outs_leave_a_serving_file_that_holds_none_of_them_untouched(warehouse, tmp_path):
    from dagster_project.lib.opt_outs import _refilter_serving

    run_delivery(warehouse, tmp_path, "run-1")
    serving = tmp_path / "serving.duckdb"
    before = serving.stat()
    channels = {"champions": "email"}
    assert _refilter_serving(warehouse, serving, {"email": {99}, "sms": {1}}, channels) == {}
    after = serving.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)  # not even copied
    assert _refilter_serving(warehouse, serving, {"email": {1, 99}}, channels) == {
        "serving segments.champions": 1
    }
    with duckdb.connect(str(serving), read_only=True) as reader:
        assert reader.execute("select customer_id from segments.champions").fetchall() == [(2,)]
    assert sorted(path.name for path in tmp_path.iterdir() if "serving" in path.name) == ["serving.duckdb"]
