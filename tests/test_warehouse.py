"""Opening the warehouse while another process holds it: retried, then a clear error."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pytest

from dagster_project.lib.warehouse import WarehouseLocked, connect, write_python_marts
from tests.conftest import copy_of, run_pipeline

HOLD = (
    "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('holding', flush=True); sys.stdin.readline()"
)


def hold(path: Path) -> subprocess.Popen:
    """Another process with the file open for writing until a line arrives on its stdin."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout.readline().strip() == "holding"
    return holder


def release(holder: subprocess.Popen) -> None:
    holder.stdin.write("\n")
    holder.stdin.flush()
    holder.wait(timeout=30)


def test_a_lock_released_between_attempts_is_waited_for(tmp_path):
    path = tmp_path / "w.duckdb"
    holder = hold(path)
    waits: list[float] = []

    def sleep(seconds: float) -> None:  # the other process lets go while we wait
        waits.append(seconds)
        release(holder)

    with connect(path, lock_waits=(1.0, 2.0), sleep=sleep) as connection:
        assert connection.execute("select 42").fetchone() == (42,)
    assert waits == [1.0]


def test_a_lock_held_through_every_retry_is_a_clear_error(tmp_path):
    path = tmp_path / "w.duckdb"
    holder = hold(path)
    waits: list[float] = []
    try:
        with pytest.raises(WarehouseLocked, match=r"is locked by another process \(waited 3 s\)"):
            connect(path, lock_waits=(1.0, 2.0), sleep=waits.append)
        assert waits == [1.0, 2.0]
        # The next steps of the same run fail at once, with the same message, instead of waiting again.
        with pytest.raises(WarehouseLocked, match="point BI tools and notebooks at the serving file"):
            connect(path, lock_waits=(1.0, 2.0), sleep=waits.append)
        assert waits == [1.0, 2.0]
    finally:
        release(holder)
    with connect(path, lock_waits=(1.0, 2.0), sleep=waits.append) as connection:  # free again: opens
        assert connection.execute("select 42").fetchone() == (42,)


def test_a_dbt_step_waits_for_a_warehouse_another_process_holds_and_then_builds(built_sample, tmp_path):
    """dbt opens the warehouse itself, seconds after a step starts here: the step first waits out the lock like
    every other step, so dbt never meets it. (Without that wait, dbt fails on the lock and the step is retried
    30 s later: STEP_UP_FOR_RETRY, which this test refuses.)"""
    from dagster_project.defs.transform import dbt_models_after_clv

    folder = copy_of(built_sample[0], tmp_path / "built")
    holder = hold(folder / "warehouse.duckdb")
    releaser = threading.Timer(8.0, release, [holder])
    releaser.start()
    try:
        result = run_pipeline(
            folder / "raw", folder / "warehouse.duckdb", dg.AssetSelection.assets(dbt_models_after_clv)
        )
    finally:
        releaser.join()
    assert holder.returncode == 0  # it held the file until the timer let it go, after the step had started
    assert result.success
    assert not [event for event in result.all_events if event.event_type_value == "STEP_UP_FOR_RETRY"]
    built = {event.asset_key.path[-1] for event in result.get_asset_materialization_events()}
    assert {"customer_value", "customer_360", "champions_loyalty_email"} <= built


def test_python_marts_written_by_an_older_version_take_the_new_definition(tmp_path):
    """A replaced table is made anew; a table appended to across runs keeps its rows and gains the new columns."""
    connection = duckdb.connect(str(tmp_path / "w.duckdb"))
    connection.execute("create schema marts")
    connection.execute("create table marts.fits (fit_id varchar primary key, model varchar)")
    connection.execute("insert into marts.fits values ('old', 'bgnbd')")
    connection.execute("create table marts.scores (customer_id bigint, clv double)")
    tables = {
        "fits": "fit_id varchar primary key, model varchar, sampled_share double",
        "scores": "customer_id bigint, clv double, p_alive double not null",
    }
    frames = {
        "fits": pd.DataFrame({"fit_id": ["new"], "model": ["bgnbd"], "sampled_share": [0.5]}),
        "scores": pd.DataFrame({"customer_id": [7], "clv": [1.0], "p_alive": [0.9]}),
    }
    write_python_marts(connection, tables, ("scores",), frames)
    assert connection.execute("select * from marts.fits order by fit_id").fetchall() == [
        ("new", "bgnbd", 0.5),
        ("old", "bgnbd", None),
    ]
    assert connection.execute("select * from marts.scores").fetchall() == [(7, 1.0, 0.9)]
