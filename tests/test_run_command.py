"""`make run` as its users meet it (python -m dagster_project.run in its own process, on a Dagster instance
in DAGSTER_HOME): a short account of a successful run, a failed run that ends with what failed, and a run
killed with SIGKILL during its dbt step that the next run gets past by itself."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from tests.tiny_dataset import write_tiny_dataset

PROJECT = Path(__file__).resolve().parents[1]


def environment(folder: Path) -> dict[str, str]:
    home = folder / "dagster_home"
    home.mkdir(exist_ok=True)
    shutil.copy(PROJECT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    return {
        **{name: value for name, value in os.environ.items() if not name.startswith(("C360_", "DAGSTER_"))},
        "DAGSTER_HOME": str(home),
        "C360_RAW_DIR": str(folder / "raw"),
        "C360_WAREHOUSE": str(folder / "warehouse.duckdb"),
        "C360_EXPORT_DIR": str(folder / "exports"),
        "C360_SERVING": str(folder / "serving.duckdb"),
    }


def make_run(folder: Path, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dagster_project.run"],
        cwd=PROJECT,
        env=environment(folder),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def dbt_is_running(pid: int) -> bool:
    """Whether a dbt process runs under `pid` (its process group)."""
    for status in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = status.read_text().rsplit(")", 1)[1].split()
            cmdline = (status.parent / "cmdline").read_bytes()
        except OSError:
            continue
        if int(fields[2]) == pid and b"dbt" in cmdline and b"build" in cmdline:  # fields[2]: process group
            return True
    return False


def test_a_run_killed_during_dbt_is_got_past_by_the_next_run_with_the_numbers_of_a_clean_run(tmp_path):
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    for folder in (killed, clean):
        write_tiny_dataset(folder / "raw")
    run = subprocess.Popen(
        [sys.executable, "-m", "dagster_project.run"],
        cwd=PROJECT,
        env=environment(killed),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 180
    while not dbt_is_running(run.pid):
        assert run.poll() is None and time.monotonic() < deadline, "the run ended before its dbt step"
        time.sleep(0.2)
    time.sleep(2)  # dbt is building
    os.killpg(run.pid, signal.SIGKILL)
    run.wait(timeout=30)

    again = make_run(killed, timeout=400)  # without the fix: waits for the dead run's pool slot, for ever
    assert again.returncode == 0, again.stdout[-3000:]
    assert "ended run" in again.stdout and "its process had died" in again.stdout
    completed = make_run(clean)
    assert completed.returncode == 0
    says_where_the_results_are(completed.stdout, clean)

    def numbers(folder: Path) -> tuple:
        with duckdb.connect(str(folder / "warehouse.duckdb"), read_only=True) as connection:
            marts = connection.execute(
                "select (select count(*) from marts.customer_360), (select count(*) from marts.customer_rfmt), "
                "(select sum(profit) from marts.customer_value), (select string_agg(rfm_segment, ',' order by "
                "customer_id) from marts.customer_rfmt)"
            ).fetchone()
        (manifest,) = (folder / "exports").glob("2*/manifest.json")
        rows = {entry["name"]: entry["rows"] for entry in json.loads(manifest.read_text())["segments"]}
        return marts, rows

    assert numbers(killed) == numbers(clean)


def says_where_the_results_are(stdout: str, folder: Path) -> None:
    """A successful run's account: a few lines, naming the serving file and the export folder."""
    assert len(stdout.splitlines()) <= 60, stdout
    assert f"serving file  {folder / 'serving.duckdb'}" in stdout
    assert f"exports       {folder / 'exports'}" in stdout and "champions_loyalty_email.csv" in stdout
    assert "CLV           not fitted: 3 repeat buyers" in stdout
    assert "DEBUG" not in stdout and "STEP_START" not in stdout


@pytest.mark.parametrize("header", ["order_id,source_customer_id,purchased_at,valor,product_type,store_type"])
def test_a_failed_run_ends_with_the_file_and_the_column(tmp_path, header):
    write_tiny_dataset(tmp_path / "raw")
    purchases = tmp_path / "raw" / "purchases" / "crm" / "purchases.csv"
    purchases.write_text(header + "\n" + purchases.read_text().split("\n", 1)[1])
    completed = make_run(tmp_path)
    assert completed.returncode == 1
    last = "\n".join(completed.stdout.splitlines()[-15:])
    assert "What failed" in last and str(purchases) in last and "missing required column 'amount'" in last
    assert "Not executing" not in completed.stdout and "Traceback" not in completed.stdout
    assert len(completed.stdout.splitlines()) <= 40
