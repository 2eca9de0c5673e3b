"""Resources shared by every stage: the settings (docs/architecture.md) and the dbt CLI."""

import os
import shutil
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import cached_property
from importlib.metadata import version
from pathlib import Path

import dagster as dg
import duckdb
from dagster_dbt import DbtCliResource, DbtProject
from packaging.version import Version

from dagster_project.defs.liveness import hold_run_lock
from dagster_project.lib.settings import Settings
from dagster_project.lib.warehouse import connect
from dagster_project.paths import DBT_PROJECT_DIR

# Every step that writes the warehouse runs in this pool; DuckDB allows one writer at a time.
WAREHOUSE_POOL = "warehouse"

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)


class SettingsResource(dg.ConfigurableResource):
    """customer360 settings: each knob from ``overrides`` if given, else ``C360_<NAME>``, else its default.
    Read when a step runs, never when the code location loads."""

    overrides: dict[str, str] = {}  # noqa: RUF012 (pydantic copies defaults)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        # Every step uses the settings: its run is marked alive for as long as this process lives.
        hold_run_lock(context.instance, context.run_id)

    def get(self) -> Settings:
        return Settings.load(self.overrides)


class WarehouseResource(dg.ConfigurableResource):
    """The run's DuckDB warehouse (C360_WAREHOUSE): every step opens it here, with the run's memory limit
    (C360_DUCKDB_MEMORY_LIMIT) and lib/warehouse.connect's waits while another process holds its lock."""

    settings: SettingsResource

    def connect(self, read_only: bool = False) -> duckdb.DuckDBPyConnection:
        config = self.settings.get()
        return connect(config.warehouse, read_only=read_only, memory_limit=config.duckdb_memory_limit)


@contextmanager
def environment(variables: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the duration of the block (for subprocesses such as dbt)."""
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def dbt_executable() -> str:
    """The dbt installed beside this Python (the project's .venv), even when that is not on PATH."""
    beside_python = Path(sys.executable).parent / "dbt"
    return str(beside_python) if beside_python.exists() else shutil.which("dbt") or "dbt"


class DbtResource(DbtCliResource):
    """dagster-dbt's CLI resource (dagster-dbt is pinned: these override its private methods), without the
    `dbt --version` subprocess it starts in every run to learn the version (6 s on these machines, most of it
    dbt's import time): it is the installed dbt-core's."""

    @cached_property
    def _cli_version(self) -> Version:
        return Version(version("dbt-core"))

    def _initialize_dbt_core_adapter(self, args: object) -> None:  # type: ignore[override]  # no adapter
        """Nor the dbt adapter dagster-dbt opens in this process before every dbt command (2.5 s here): it
        serves only fetch_column_metadata / fetch_row_counts, which customer360 does not use (the dbt step
        counts each model's rows itself, transform.with_row_counts)."""
        return None


def dbt_resource() -> DbtResource:
    """The dbt CLI resource on the project, with the project's dbt."""
    # dagster-dbt accepts a DbtProject as project_dir (its documented use), though it annotates a str.
    return DbtResource(project_dir=dbt_project, dbt_executable=dbt_executable())  # type: ignore[arg-type]


def prepare_manifest_if_dev() -> None:
    """Under `dagster dev`, parse the dbt project when the code location loads, as dagster-dbt's
    DbtProject.prepare_if_dev does, but with the project's dbt: dagster-dbt's own preparer looks for `dbt` on
    PATH, which `make dev` (.venv/bin/dagster, .venv/bin not on PATH) does not have."""
    if dbt_project.preparer.using_dagster_dev():
        dbt_resource().cli(["parse", "--quiet"], target_path=dbt_project.target_path).wait()


def resources(overrides: Mapping[str, str] | None = None) -> dict[str, object]:
    """Every step's resources; `overrides` replace settings (tests, benchmarks), else C360_ variables."""
    settings = SettingsResource(overrides=dict(overrides or {}))
    return {
        "settings": settings,
        "warehouse": WarehouseResource(settings=settings),
        "dbt": dbt_resource(),
    }


def dbt_code(config: Settings) -> str:
    """The fingerprint of the dbt code and of what else a build's result depends on (Settings.build_inputs):
    a dbt step rebuilds from scratch when it changed; row-count bands compare runs of the same."""
    from dagster_project.lib import dbt_builds

    return dbt_builds.fingerprint(DBT_PROJECT_DIR, config.build_inputs())
