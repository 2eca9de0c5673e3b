"""A hand-made dataset of 6 customers (5 buyers, 3 of them repeat buyers): too little for a CLV fit, plenty
for everything else. The run succeeds, builds and publishes every mart, segment and export, and says why
there is no CLV. And `make run` as its users meet it (python -m dagster_project.run in its own process, on a
Dagster instance in DAGSTER_HOME): a short account of a successful run, a failed run that ends with what
failed, and a run killed during its dbt step that the next run gets past by itself."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from dagster_project.defs.console import error_text
from dagster_project.paths import ROOT
from tests.conftest import copy_of, run_pipeline
from tests.tiny_dataset import write_tiny_dataset


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dg.ExecuteInProcessResult]:
    folder = tmp_path_factory.mktemp("tiny")
    write_tiny_dataset(folder / "raw")
    return folder, run_pipeline(folder / "raw", folder / "warehouse.duckdb")


def test_without_enough_repeat_buyers_everything_but_clv_is_built_and_published(tiny_run):
    folder, result = tiny_run
    assert result.success
    reason = "3 repeat buyers in the production cut, 30 needed (C360_CLV_MIN_REPEAT_BUYERS)"
    with duckdb.connect(str(folder / "warehouse.duckdb"), read_only=True) as connection:
        counts = {
            table: connection.execute(f"select count(*) from marts.{table}").fetchone()[0]
            for table in ("customer_rfmt", "customer_value", "customer_360", "customer_clv", "clv_model_fits")
        }
        status = connection.execute(
            "select fitted, clv_status, repeat_buyers from marts.clv_status"
        ).fetchone()
        in_360 = connection.execute(
            "select count(*), count(clv), count(p_alive), count(distinct clv_status), any_value(clv_status) "
            "from marts.customer_360"
        ).fetchone()
        tiers = dict(
            connection.execute("select value_tier, count(*) from marts.customer_value group by 1").fetchall()
        )
    assert counts == {
        "customer_rfmt": 5,
        "customer_value": 6,
        "customer_360": 6,
        "customer_clv": 0,
        "clv_model_fits": 0,
    }
    assert status == (False, f"not fitted: {reason}", 3)
    assert in_360 == (6, 0, 0, 1, f"not fitted: {reason}")
    assert "most_growable" not in tiers and sum(tiers.values()) == 6
    manifest = json.loads(next((folder / "exports").glob("2025-*/manifest.json")).read_text())
    assert {entry["name"] for entry in manifest["segments"]} >= {
        "champions_loyalty_email",
        "next_best_offer_email",
        "service_desk_next_contact",
    }
    with duckdb.connect(str(folder / "serving.duckdb"), read_only=True) as serving:
        assert serving.execute("select count(*) from marts.customer_360").fetchone() == (6,)


def test_without_campaign_history_the_offers_fall_back_to_affinity(tiny_run):
    folder, result = tiny_run
    assert result.success
    with duckdb.connect(str(folder / "warehouse.duckdb"), read_only=True) as connection:
        used, status = connection.execute(
            "select used_for_ranking, offer_model_status from marts.offer_model_status"
        ).fetchone()
        scores = connection.execute("select count(*) from marts.offer_uplift_scores").fetchone()[0]
        versions = connection.execute(
            "select distinct model_version from marts.customer_next_best_offer where model_version is not null"
        ).fetchall()
        customers = connection.execute("select count(*) from marts.customer_next_best_offer").fetchone()[0]
    assert not used and status.startswith("not fitted: history:") and scores == 0
    assert set(versions) <= {("affinity",)} and customers == 6


def test_the_clv_check_warns_with_the_reason_instead_of_blocking(tiny_run):
    _, result = tiny_run
    (clv_check,) = [
        check
        for check in result.get_asset_check_evaluations()
        if check.asset_key == dg.AssetKey(["marts", "customer_clv"])
    ]
    assert not clv_check.passed and clv_check.severity == dg.AssetCheckSeverity.WARN
    assert "3 repeat buyers in the production cut, 30 needed" in clv_check.description
    others = [check for check in result.get_asset_check_evaluations() if check is not clv_check]
    assert others and all(check.passed for check in others)
    (customer_clv,) = [
        event
        for event in result.asset_materializations_for_node("clv")
        if event.asset_key == dg.AssetKey(["marts", "customer_clv"])
    ]
    assert customer_clv.metadata["most_growable"].value == "left empty: no CLV this run"


def test_a_run_without_clv_then_one_with_it_fills_the_clv_columns_again(built_sample, tmp_path):
    """An established warehouse: a run that cannot fit (here: the minimum set above the repeat buyers) still
    builds and exports everything else; the next run with enough data fills the CLV columns again."""
    folder = copy_of(built_sample[0], tmp_path / "built")
    warehouse = folder / "warehouse.duckdb"

    def state() -> tuple:
        with duckdb.connect(str(warehouse), read_only=True) as connection:
            return connection.execute(
                """
                select (select fitted from marts.clv_status), count(*), count(clv),
                    count(*) filter (where value_tier = 'most_growable')
                from marts.customer_value
                """
            ).fetchone()

    # Only the CLV step and the marts, gates and segments after it: what a run without CLV changes.
    from dagster_project.defs.clv import clv
    from dagster_project.defs.transform import dbt_models_after_clv

    after_clv = dg.AssetSelection.assets(clv, dbt_models_after_clv)
    without = run_pipeline(folder / "raw", warehouse, after_clv, clv_min_repeat_buyers="1000000")
    assert without.success
    fitted, customers, with_clv, growable = state()
    assert (fitted, with_clv, growable) == (False, 0, 0) and customers > 1000
    again = run_pipeline(folder / "raw", warehouse, after_clv)
    assert again.success
    fitted, customers_again, with_clv, growable = state()
    assert fitted and with_clv == customers_again == customers and growable > 0


PROJECT = ROOT


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


def test_a_run_killed_during_dbt_is_got_past_by_the_next_run_with_the_numbers_of_a_clean_run(
    tiny_run, tmp_path
):
    """`make run` in its own process, killed with SIGKILL (its whole process tree) while dbt builds; the next
    `make run` ends the dead run, gets past the pool slot it held, and gives the numbers of a clean run
    (`tiny_run`), saying where they are in a few lines."""
    killed, (clean, _) = tmp_path / "killed", tiny_run
    write_tiny_dataset(killed / "raw")
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
    says_where_the_results_are(again.stdout, killed)

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
    """A successful run's account: one line per step (about 50: ingest, gates, dbt, the models, delivery) and
    a closing account of about 20, naming the serving file and the export folder."""
    assert len(stdout.splitlines()) <= 75, stdout
    assert f"serving file  {folder / 'serving.duckdb'}" in stdout
    assert f"exports       {folder / 'exports'}" in stdout and "champions_loyalty_email.csv" in stdout
    assert "CLV           not fitted: 3 repeat buyers" in stdout
    assert "DEBUG" not in stdout and "STEP_START" not in stdout


def test_a_failed_step_is_told_by_the_error_it_raised():
    """Not by Dagster's wrapper ("Error occurred while executing op ..."), which says nothing of the cause."""

    @dg.asset
    def breaks() -> None:
        raise ValueError("Conversion Error: could not convert 'nan' to INT32")

    result = dg.materialize([breaks], raise_on_error=False)
    (failure,) = result.get_step_failure_events()
    assert error_text(failure.event_specific_data.error) == (
        "ValueError: Conversion Error: could not convert 'nan' to INT32"
    )


def test_a_failed_run_ends_with_the_file_and_the_column(tmp_path):
    header = "order_id,source_customer_id,purchased_at,valor,product_type,store_type"  # no amount
    write_tiny_dataset(tmp_path / "raw")
    purchases = tmp_path / "raw" / "purchases" / "crm" / "purchases.csv"
    purchases.write_text(header + "\n" + purchases.read_text().split("\n", 1)[1])
    completed = make_run(tmp_path)
    assert completed.returncode == 1
    last = "\n".join(completed.stdout.splitlines()[-15:])
    assert "What failed" in last and str(purchases) in last and "missing required column 'amount'" in last
    assert "Not executing" not in completed.stdout and "Traceback" not in completed.stdout
    assert len(completed.stdout.splitlines()) <= 40
