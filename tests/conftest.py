"""Shared fixtures: generated datasets in temporary folders and a real Dagster run over them."""

from __future__ import annotations

import json
import shutil
import subprocess
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
