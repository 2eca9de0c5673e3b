"""dbt assets: every model, seed and test of dbt/ (staging, intermediate, marts), built by `dbt build` in two
steps around the CLV asset."""

import json
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, redirect_stdout
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pyarrow
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets
from dagster_dbt.utils import select_unique_ids

from dagster_project.defs.console import debug_logging
from dagster_project.defs.resources import (
    WAREHOUSE_POOL,
    SettingsResource,
    WarehouseResource,
    dbt_code,
    dbt_project,
    environment,
    prepare_manifest_if_dev,
)
from dagster_project.lib import dbt_builds, spark
from dagster_project.lib.settings import Settings
from dagster_project.lib.warehouse import has_table, has_view, is_lock_error, scalar

prepare_manifest_if_dev()


class Translator(DagsterDbtTranslator):
    def get_asset_check_spec(
        self,
        asset_spec: dg.AssetSpec,
        manifest: Mapping[str, Any],
        unique_id: str,
        project: DbtProject | None,
    ) -> dg.AssetCheckSpec | None:
        """A dbt data test is an asset check of the run unless only `make test` runs it (CHECKED_IN_CI)."""
        if unique_id in CHECKED_IN_CI:
            return None
        return super().get_asset_check_spec(asset_spec, manifest, unique_id, project)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        """Group models by their folder (staging, intermediate, marts, segments); seeds with staging."""
        fqn = dbt_resource_props.get("fqn", [])
        if dbt_resource_props.get("resource_type") == "seed" or len(fqn) < 3:
            return "staging"
        return fqn[1]


MANIFEST = dbt_builds.read_manifest(dbt_project.manifest_path)
RELATIONS = {
    unique_id: f'"{node["schema"]}"."{node["alias"]}"'
    for unique_id, node in MANIFEST["nodes"].items()
    if node["resource_type"] in ("model", "seed", "snapshot")
}


# dbt sources (the tables dbt reads that it does not build), and the models whose rows are never rebuilt
# (full_refresh=false: the id ledger, the histories), by schema.name.
SOURCES = {
    unique_id: f"{source['schema']}.{source['identifier']}"
    for unique_id, source in MANIFEST["sources"].items()
}
# Every table of the project in Spark's catalog (schema.name): what an erasure drops on a cluster.
PROJECT_RELATIONS = sorted(
    {relation.replace('"', "") for relation in RELATIONS.values()} | set(SOURCES.values())
)
NEVER_REBUILT = [
    f"{node['schema']}.{node['alias']}"
    for node in MANIFEST["nodes"].values()
    if node["resource_type"] == "model" and node["config"].get("full_refresh") is False
]


def step_relations(selector: str) -> list[str]:
    """The models and seeds a selector of dbt/selectors.yml builds, by schema.name."""
    selected = select_unique_ids("fqn:*", "", selector, dbt_project, MANIFEST)
    return sorted(RELATIONS[unique_id].replace('"', "") for unique_id in selected if unique_id in RELATIONS)


def step_sources(selector: str) -> list[str]:
    """The dbt sources the models of a selector read, by schema.name."""
    selected = select_unique_ids("fqn:*", "", selector, dbt_project, MANIFEST)
    return sorted(
        {
            SOURCES[parent]
            for unique_id in selected
            for parent in MANIFEST["nodes"].get(unique_id, {}).get("depends_on", {}).get("nodes", [])
            if parent in SOURCES
        }
    )


def on_spark(
    context: dg.AssetExecutionContext, warehouse: WarehouseResource, config: Settings, selector: str
) -> tuple[spark.Engine, bool]:
    """Before a dbt step on Spark: the tables its models read copied into Spark's catalog, and the never-rebuilt
    tables Spark lost (a new Spark folder, an erasure) restored from the warehouse. Returns the engine, and
    whether the step must rebuild from scratch (Spark lacks some of its tables)."""
    engine = spark.engine(config)
    relations = step_relations(selector)
    started = time.perf_counter()
    with warehouse.connect() as connection:
        copied = spark.push(connection, engine, config.spark_home, step_sources(selector))
        lost_history = spark.missing(engine, [name for name in NEVER_REBUILT if name in relations])
        restored = spark.push(connection, engine, config.spark_home, lost_history)
    context.log.info(
        f"spark: {len(copied)} table(s) copied in, {len(restored)} never-rebuilt table(s) restored "
        f"({time.perf_counter() - started:.1f} s)"
    )
    return engine, bool(spark.missing(engine, relations))


def holds(connection: duckdb.DuckDBPyConnection, relation: str) -> bool:
    """Whether the warehouse holds `relation` ("schema"."name"), a table or a view."""
    schema, _, name = relation.replace('"', "").partition(".")
    return has_table(connection, schema, name) or has_view(connection, schema, name)


def with_row_counts(connection: duckdb.DuckDBPyConnection, events: list[Any]) -> Iterator[Any]:
    """The dbt step's events, each model's and seed's output with `dagster/row_count` added."""
    for event in events:
        unique_id = getattr(event, "metadata", {}).get("unique_id")
        relation = RELATIONS.get(getattr(unique_id, "value", unique_id))
        # On Spark a failed step pulls nothing: what its models built stays there, uncounted, and dbt's error
        # is the one the run reports.
        if (
            isinstance(event, dg.Output | dg.AssetMaterialization)
            and relation
            and holds(connection, relation)
        ):
            rows = scalar(connection, f"select count(*) from {relation}")
            event = event.with_metadata({**event.metadata, "dagster/row_count": rows})
        yield event


@contextmanager
def dbt_console(target: Path) -> Iterator[None]:
    """dbt's console lines into <target>/dbt_console.log, unless C360_LOG_LEVEL=debug."""
    if debug_logging():
        yield
        return
    target.mkdir(parents=True, exist_ok=True)
    with (target / "dbt_console.log").open("w", encoding="utf-8") as log, redirect_stdout(log):
        yield


def dbt_target_path(settings: Settings, step: str) -> Path:
    """dbt's target folder for one step on one warehouse: data/warehouse.duckdb -> data/warehouse_dbt/<step>."""
    return settings.warehouse.with_name(settings.warehouse.stem + "_dbt") / step


# The unit tests and data tests that only `make test` runs (dbt/selectors.yml): not checks of a production run.
CHECKED_IN_CI = select_unique_ids("fqn:*", "", "checked_in_ci", dbt_project, MANIFEST)

# The CLV and offer-model assets (Python) sit inside the dbt graph: they read intermediate models, and the
# marts that read what they write (sources `clv` and `offers`) run after them. So dbt runs in two steps around
# them, each a selector of dbt/selectors.yml, which also names the tests only `make test` runs (unit tests, and
# data tests a production run need not repeat).


def _dbt_step(name: str, description: str, selector: str) -> dg.AssetsDefinition:
    """A `dbt build` step over a selector of dbt/selectors.yml, with the run's settings in dbt's environment.

    The step keeps its dbt target folder beside the warehouse, so that the next run on the same warehouse and
    settings reuses dbt's partial parse instead of parsing the whole project again."""

    def build(
        context: dg.AssetExecutionContext,
        dbt: DbtCliResource,
        settings: SettingsResource,
        warehouse: WarehouseResource,
    ) -> Iterator[Any]:
        config = settings.get()
        arguments = ["build", "--exclude-resource-type", "unit_test", "--vars", json.dumps(config.dbt_vars())]
        code = dbt_code(config)
        variables = config.dbt_environment()
        spark_lacks_tables = False
        if config.engine == "spark":
            engine, spark_lacks_tables = on_spark(context, warehouse, config, selector)
            variables |= engine.environment()
        # Like every step, wait out a transient lock held by another process before dbt opens the warehouse.
        with warehouse.connect() as connection:
            full_refresh = dbt_builds.needs_full_refresh(connection, name, code) or spark_lacks_tables
            dbt_builds.start_build(
                connection, name, code, full_refresh, context.run_id, datetime.now(UTC).replace(tzinfo=None)
            )
        if full_refresh:
            context.log.info(
                f"{name}: first build, dbt code or settings changed, or the last build failed: --full-refresh"
            )
            arguments.append("--full-refresh")
        # dbt's DuckDB is about to take its whole memory limit: hand back to the system what earlier steps'
        # pandas batches left in pyarrow's memory pool (kept for reuse; about half a GB after the gates).
        pyarrow.default_memory_pool().release_unused()
        dbt_builds.share_partial_parse(dbt_target_path(config, name))
        with environment(variables):
            invocation = dbt.cli(
                arguments, context=context, target_path=dbt_target_path(config, name), raise_on_error=False
            )
            # Held until dbt has let go of the warehouse: each model's materialization then carries its row
            # count (dagster/row_count), which only a query after the build can give (dbt holds the file).
            # dbt's own lines (dagster-dbt echoes them on stdout) go to a file beside its target folder.
            with dbt_console(dbt_target_path(config, name)):
                events = list(invocation.stream())
        error = invocation.get_error()
        if error is not None and is_lock_error(error):  # taken again between our wait and dbt's open
            raise dg.RetryRequested(max_retries=2, seconds_to_wait=30) from error
        with warehouse.connect() as connection:
            if config.engine == "spark" and error is None:
                # What the step built, into the warehouse file: the rest of the run reads it there.
                started = time.perf_counter()
                built = spark.present(engine, step_relations(selector))
                spark.pull(connection, engine, built)
                context.log.info(
                    f"spark: {len(built)} model(s) copied into the warehouse file "
                    f"({time.perf_counter() - started:.1f} s)"
                )
            yield from with_row_counts(connection, events)
            if error is None:
                dbt_builds.finish_build(connection, name, context.run_id)
        if error is not None:
            raise error

    build.__doc__ = description
    return dbt_assets(
        manifest=MANIFEST,
        project=dbt_project,
        dagster_dbt_translator=Translator(),
        pool=WAREHOUSE_POOL,
        name=name,
        selector=selector,
    )(build)


dbt_identity_inputs = _dbt_step(
    "dbt_identity_inputs",
    "Seeds, staging and what the probabilistic identity pass reads (int_identity_person_features).",
    selector="identity_inputs",
)
dbt_models = _dbt_step(
    "dbt_models",
    "The identity graph, the intermediate models and the marts that do not need CLV.",
    selector="before_clv",
)
dbt_models_after_clv = _dbt_step(
    "dbt_models_after_clv",
    "The marts that read marts.customer_clv (customer_value, customer_360 and what depends on them) or the "
    "offer model's scores (the next best offer).",
    selector="after_clv",
)

defs = dg.Definitions(assets=[dbt_identity_inputs, dbt_models, dbt_models_after_clv])
