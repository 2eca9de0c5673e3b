"""Opening the warehouse while another process holds it: retried, then a clear error."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from dagster_project.lib.warehouse import WarehouseLocked, connect

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
        with pytest.raises(WarehouseLocked, match="stayed locked by another process through 2 retries"):
            connect(path, lock_waits=(1.0, 2.0), sleep=waits.append)
    finally:
        release(holder)
    assert waits == [1.0, 2.0]
