"""Exports: the segment gates (blocking asset checks on each segment model), and the delivery: the segment
files marketers download and the serving file BI reads, written only when every gate of the run passed and
put in place together (docs/delivery.md)."""

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import dagster as dg
import duckdb

from dagster_project.defs.quality import GATED_MARTS, UNGATED_WHEN, gate_check
from dagster_project.defs.resources import (
    DBT_PROJECT_DIR,
    WAREHOUSE_POOL,
    SettingsResource,
    WarehouseResource,
    dbt_code,
    dbt_project,
)
from dagster_project.lib import gates, retention
from dagster_project.lib.delivery import deliver
from dagster_project.lib.expectations import GateResult, load_suite, suite_path, validate
from dagster_project.lib.exports import (
    Segment,
    consent_channels,
    forget_prepared,
    keep_prepared,
    prepare,
    prepared_by_gate,
    segments_from_manifest,
)
from dagster_project.lib.publish import descriptions_from_manifest, keys_of_tables_built_by_parts
from dagster_project.lib.settings import Settings
from dagster_project.lib.warehouse import scalar

SEGMENTS = segments_from_manifest(
    dbt_project.manifest_path, consent_channels(DBT_PROJECT_DIR / "dbt_project.yml")
)
TABLES_BUILT_BY_PARTS = keys_of_tables_built_by_parts(dbt_project.manifest_path)
DESCRIPTIONS = descriptions_from_manifest(dbt_project.manifest_path)
SEGMENT_SUITE = "segment"  # for every segment, unless expectations/segment_<name>.json exists


def segment_suite(segment: Segment) -> str:
    own = f"segment_{segment.name}"
    return own if suite_path(own).exists() else SEGMENT_SUITE


def segment_key(segment: Segment) -> dg.AssetKey:
    return dg.AssetKey(["segments", segment.name])


def segment_gate(segment: Segment) -> dg.AssetChecksDefinition:
    suite = segment_suite(segment)

    def judge(
        connection: duckdb.DuckDBPyConnection, config: Settings, at: datetime, run_id: str
    ) -> list[GateResult]:
        prepared = prepare(connection, segment, config.promotions_skip_open_complaints)
        keep_prepared(config.warehouse, run_id, prepared)  # what the delivery of this run will export
        # Without CLV this run, segments that select on it (tiers, p_alive) shrink or empty: no row-count band.
        no_band = {"min_rows": None, "max_rows": None}
        parameters = (
            gates.row_count_band(connection, segment.relation, dbt_code(config))
            if gates.clv_refusal(connection) is None
            else no_band
        )
        return [validate(prepared.checked, load_suite(suite_path(suite)), segment.relation, parameters)]

    return gate_check(
        segment_key(segment),
        "segment_gate",
        f"Suite expectations/{suite}.json on the rows {segment.name} would export (consent for "
        f"{segment.channel} applied, {segment.purpose} rules, cells neutralised); a failure stops the delivery.",
        judge,
    )


# What BI and marketers receive is gated: every mart gate and segment gate of the same run must have passed.
GATED = [
    *(dg.AssetKey(["marts", table]) for table in GATED_MARTS),
    *(segment_key(segment) for segment in SEGMENTS),
]


def require_gates_passed(connection: duckdb.DuckDBPyConnection, run_id: str, refusal: str) -> dict[str, bool]:
    """This run's gate verdicts; a Failure if one failed or a mart or segment gate did not run in it."""
    verdicts = gates.run_verdicts(connection, run_id)
    failed = [target for target, passed in verdicts.items() if not passed]
    if failed:
        raise dg.Failure(description=f"{refusal}: gates failed on {', '.join(failed)}")
    required = {
        f"marts.{table}"
        for table in GATED_MARTS
        if table not in UNGATED_WHEN or UNGATED_WHEN[table](connection) is None
    } | {segment.relation for segment in SEGMENTS}
    missing = sorted(required - set(verdicts))
    if missing:
        raise dg.Failure(
            description=f"{refusal}: these gates did not run in this run (materialize with the marts and "
            f"segments upstream): {', '.join(missing)}"
        )
    return verdicts


@dg.multi_asset(
    specs=[
        dg.AssetSpec(
            ["exports", "segments"],
            deps=GATED,
            group_name="exports",
            kinds={"python", "csv"},
            description="One CSV per segment in <C360_EXPORT_DIR>/<as_of>/<segment>.csv and manifest.json "
            "(rows, sha256, channel, purpose, customers removed for an opt-out or an open complaint, cells "
            "cleaned, the gates of this run).",
        ),
        dg.AssetSpec(
            ["publish", "serving"],
            deps=[*GATED, dg.AssetKey(["marts", "identity_match_quality"])],
            group_name="exports",
            kinds={"python", "duckdb"},
            description="The file BI tools and notebooks read (C360_SERVING): every mart, and each segment's "
            "exported rows (never a customer its export refused). Readers of the old file keep a consistent "
            "snapshot.",
        ),
    ],
    pool=WAREHOUSE_POOL,
    can_subset=False,
)
def delivery(
    context: dg.AssetExecutionContext, settings: SettingsResource, warehouse: WarehouseResource
) -> Iterator[dg.MaterializeResult]:
    """The segment files and the serving file, written after every gate of this run passed and put in place
    together: a run that fails before the end leaves both as they were, from the same earlier run."""
    config = settings.get()
    at = datetime.now(UTC).replace(tzinfo=None)
    try:
        with warehouse.connect() as connection:
            verdicts = require_gates_passed(connection, context.run.run_id, "not delivered")
            as_of = scalar(connection, "select as_of from marts.observation_window")
            prepared = [
                prepared_by_gate(config.warehouse, context.run.run_id, segment)
                or prepare(connection, segment, config.promotions_skip_open_complaints)
                for segment in SEGMENTS
            ]
            delivered = deliver(
                connection,
                config.warehouse,
                config.export_dir,
                config.serving,
                as_of,
                prepared,
                {target: "passed" for target in verdicts},
                context.run.run_id,
                at,
                TABLES_BUILT_BY_PARTS,
                DESCRIPTIONS,
            )
    finally:
        forget_prepared(config.warehouse)
    segments = delivered.manifest["segments"]
    for entry in segments:
        context.log.info(
            f"{entry['file']}: {entry['rows']} rows ({entry['opted_out_removed']} opted out of "
            f"{entry['channel']}, {entry['open_complaint_removed']} with an open complaint, "
            f"{entry.get('unprofitable_removed', 0)} not worth the contact: removed)"
        )
    publication = delivered.publication
    context.log.info(f"published {len(publication.tables)} tables to {publication.path}")
    yield dg.MaterializeResult(
        asset_key=["exports", "segments"],
        metadata={
            "export_folder": str(delivered.export_folder),
            "as_of": str(as_of),
            "files": len(segments),
            "dagster/row_count": sum(entry["rows"] for entry in segments),
            "rows": dg.MetadataValue.json({entry["name"]: entry["rows"] for entry in segments}),
            "opted_out_removed": dg.MetadataValue.json(
                {entry["name"]: entry["opted_out_removed"] for entry in segments}
            ),
            "open_complaint_removed": dg.MetadataValue.json(
                {entry["name"]: entry["open_complaint_removed"] for entry in segments}
            ),
            "unprofitable_removed": dg.MetadataValue.json(
                {entry["name"]: entry.get("unprofitable_removed", 0) for entry in segments}
            ),
            "cells_cleaned": dg.MetadataValue.json(
                {entry["name"]: entry["cells_cleaned"] for entry in segments}
            ),
            "gates_passed": len(verdicts),
        },
    )
    yield dg.MaterializeResult(
        asset_key=["publish", "serving"],
        metadata={
            "path": str(publication.path),
            "tables": dg.MetadataValue.json(publication.tables),
            "rows_copied": dg.MetadataValue.json(publication.copied),
            "bytes": publication.bytes,
            "dagster/row_count": publication.tables.get("marts.customer_360", 0),
        },
    )


FINISHED = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]


@dg.asset(
    key=["exports", "retention"],
    deps=[dg.AssetKey(["exports", "segments"])],
    group_name="exports",
    kinds={"python"},
    pool=WAREHOUSE_POOL,
    description="Removes export folders (the newest excepted), validation reports, gate log rows and finished "
    "Dagster runs older than C360_RETENTION_DAYS, after the day's delivery; each removal is logged in "
    "raw._retention_log (names and dates only).",
)
def retention_of_outputs(
    context: dg.AssetExecutionContext, settings: SettingsResource, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    config = settings.get()
    if not config.retention_days:
        context.log.info("retention off (C360_RETENTION_DAYS is 0): nothing removed")
        return dg.MaterializeResult(metadata={"retention_days": 0})
    now = datetime.now(UTC).replace(tzinfo=None)
    cutoff = now - timedelta(days=config.retention_days)
    old_runs = [
        (record.dagster_run.run_id, record.create_timestamp.replace(tzinfo=None))
        for record in context.instance.get_run_records(
            filters=dg.RunsFilter(created_before=cutoff.replace(tzinfo=UTC), statuses=FINISHED)
        )
        if record.dagster_run.run_id != context.run.run_id
    ]
    with warehouse.connect() as connection:
        run = retention.apply(
            config.export_dir, connection, config.retention_days, now, old_runs, context.instance.delete_run
        )
    counts = run.counts()
    context.log.info(
        f"retention ({config.retention_days} days, before {run.cutoff:%Y-%m-%d %H:%M}): "
        + (
            ", ".join(f"{count} {kind.replace('_', ' ')}" for kind, count in sorted(counts.items()))
            or "nothing"
        )
        + " removed"
    )
    return dg.MaterializeResult(
        metadata={
            "retention_days": config.retention_days,
            "cutoff": run.cutoff.isoformat(timespec="seconds"),
            "removed": dg.MetadataValue.json(counts),
            "export_folders_removed": dg.MetadataValue.json(
                [removal.name for removal in run.removed if removal.kind == "export_folder"]
            ),
        }
    )


defs = dg.Definitions(
    assets=[delivery, retention_of_outputs], asset_checks=[segment_gate(segment) for segment in SEGMENTS]
)
