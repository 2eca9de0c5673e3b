"""Shared fixtures: generated datasets in temporary folders and a real Dagster run over them."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from dagster_project.defs.resources import DBT_PROJECT_DIR, dbt_executable

SAMPLE_PEOPLE = 1200


def pytest_sessionstart(session: pytest.Session) -> None:
    """The dbt assets are defined from dbt's manifest: parse the project once if it was never parsed."""
    if not (DBT_PROJECT_DIR / "target" / "manifest.json").exists():
        subprocess.run(
            [dbt_executable(), "parse", "--quiet", "--project-dir", ".", "--profiles-dir", "."],
            cwd=DBT_PROJECT_DIR,
            check=True,
        )


@pytest.fixture(scope="session")
def generated_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dataset written by the generator once per session (read-only for tests: copy before changing)."""
    from dagster_project.synthetic import generate

    out = tmp_path_factory.mktemp("generated")
    generate(SAMPLE_PEOPLE, seed=7, out=out)
    return out


@pytest.fixture(scope="session")
def built_sample(
    generated_dataset: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dg.ExecuteInProcessResult]:
    """One full run over a copy of the generated dataset, shared by the tests that only read its results:
    <folder>/raw, <folder>/warehouse.duckdb, <folder>/exports. Tests that change anything use `copy_of`."""
    folder = tmp_path_factory.mktemp("built")
    shutil.copytree(generated_dataset / "raw", folder / "raw")
    return folder, run_pipeline(folder / "raw", folder / "warehouse.duckdb")


# A BI client in its own process, as Metabase or DBeaver would be: it holds the serving file open read-only for
# the whole run (a snapshot), and meanwhile opens the file afresh every 0.2 s to record what a new reader sees.
BI_CLIENT = """
import json, sys, threading, time, duckdb
serving = sys.argv[1]
def state(connection):
    run_id = connection.execute("select run_id from marts.publication").fetchone()[0]
    customers = connection.execute("select count(*) from marts.customer_360").fetchone()[0]
    return [run_id, customers]
held = duckdb.connect(serving, read_only=True, config={"enable_external_access": False})
print(json.dumps({"version": duckdb.__version__, "opened": state(held)}), flush=True)
fresh, stop = [], threading.Event()
def poll():
    while not stop.is_set():
        with duckdb.connect(serving, read_only=True, config={"enable_external_access": False}) as reader:
            fresh.append(state(reader))
        time.sleep(0.2)
poller = threading.Thread(target=poll)
poller.start()
sys.stdin.readline()
stop.set()
poller.join()
print(json.dumps({"held": state(held), "fresh": fresh}), flush=True)
"""

NEW_CUSTOMER = (
    "source_customer_id,full_name,document_id,email,phone,birth_date,city,state,postal_code,loyalty_id,"
    "created_at,updated_at\n"
    "999001,Zuleica Teste Nova,52998224725,zuleica.nova@example.com.br,11987650001,1990-05-17,Campinas,SP,"
    "13010-000,,2025-12-30 09:15:00,2025-12-30 09:15:00\n"
)


@pytest.fixture(scope="session")
def second_run(
    built_sample: tuple[Path, dg.ExecuteInProcessResult], tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, dg.ExecuteInProcessResult, dict]:
    """A second full run on a copy of the built sample, shared to save a pipeline run per test module: one new
    extract arrives (customers/ecommerce/customers_2025-12-31.csv: one new person, no purchases), as_of is set
    back to 2025-06-30 (a second RFM snapshot, as reproducing a past month would), and a BI client in another
    process holds the serving file throughout. Returns (folder, result, what the client saw)."""
    folder = copy_of(built_sample[0], tmp_path_factory.mktemp("second") / "built")
    client = subprocess.Popen(
        [sys.executable, "-c", BI_CLIENT, str(folder / "serving.duckdb")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    seen = json.loads(client.stdout.readline())
    (folder / "raw" / "customers" / "ecommerce" / "customers_2025-12-31.csv").write_text(NEW_CUSTOMER)
    try:
        result = run_pipeline(folder / "raw", folder / "warehouse.duckdb", as_of="2025-06-30")
    finally:
        client.stdin.write("done\n")
        client.stdin.flush()
        seen.update(json.loads(client.stdout.readline()))
        client.wait(timeout=30)
    return folder, result, seen


def copy_of(folder: Path, destination: Path) -> Path:
    """A private copy of a built folder (raw extracts, warehouse, exports) to run again on."""
    shutil.copytree(folder, destination)
    return destination


@pytest.fixture
def dataset(generated_dataset: Path, tmp_path: Path) -> Path:
    """A private copy of the generated dataset that a test may change."""
    copy = tmp_path / "dataset"
    shutil.copytree(generated_dataset, copy)
    return copy


def file_rows(dataset: Path) -> dict[str, int]:
    """Rows the generator wrote per file (relative to raw/)."""
    return json.loads((dataset / "truth" / "parameters.json").read_text())["files"]


def run_pipeline(
    raw_dir: Path, warehouse: Path, selection: str | dg.AssetSelection = "*", **settings: str
) -> dg.ExecuteInProcessResult:
    """Materialize the selected assets of the real code location, as `make run` does, without raising;
    `settings` are further overrides (e.g. as_of="2025-06-30"); exports and the serving file go beside
    the warehouse."""
    from dagster_project.definitions import materialize_in_process

    overrides = {
        "raw_dir": str(raw_dir),
        "warehouse": str(warehouse),
        "export_dir": str(warehouse.parent / "exports"),
        "serving": str(warehouse.parent / "serving.duckdb"),
        **settings,
    }
    return materialize_in_process(overrides, selection)
