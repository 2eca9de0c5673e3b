"""Ingest assets: one per raw family, loading every extract file into raw.<family> (docs/contracts.md), and the
freshness checks that warn when a family's extracts stop arriving."""

import warnings
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg

from dagster_project.defs.exports import SEGMENTS
from dagster_project.defs.resources import WAREHOUSE_POOL, SettingsResource, WarehouseResource
from dagster_project.lib.contracts import FAMILIES, Family
from dagster_project.lib.delivery import recover
from dagster_project.lib.ingest import load_family
from dagster_project.lib.opt_outs import honour


def ingest_asset(family: Family) -> dg.AssetsDefinition:
    @dg.asset(
        name=family.name,
        key_prefix="raw",
        group_name="ingest",
        kinds={"python", "duckdb"},
        pool=WAREHOUSE_POOL,
        description=(
            f"One row per {family.name} row delivered in <raw_dir>/{family.name}/<source_system>/*.csv|.csv.gz|"
            f".parquet, parsed in the source's dialect, with lineage. {family.description} "
            "Each file loads once (content-hash ledger raw._load_log); unparseable rows go to raw._quarantine."
        ),
    )
    def ingest(
        context: dg.AssetExecutionContext, settings: SettingsResource, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        config = settings.get()
        # A run's first steps: finish or clean up what a killed run left (a no-op once done).
        for line in recover(config.warehouse, config.export_dir, config.serving):
            context.log.warning(line)
        loaded_at = datetime.now(UTC).replace(tzinfo=None)
        applied: dict[str, Any] = {}
        with warehouse.connect() as connection:
            load = load_family(connection, config.raw_dir, family, config.max_quarantine_share, loaded_at)
            if family.name == "consents" and load.rows_loaded:
                # Before anything can fail: what is already delivered honours the opt-outs just loaded.
                honoured = honour(
                    connection,
                    loaded_at,
                    config.export_dir,
                    config.serving,
                    {segment.name: segment.channel for segment in SEGMENTS},
                )
                if honoured.removed:
                    context.log.warning(honoured.summary())
                applied = {"opt_outs_applied_to_delivered": dg.MetadataValue.json(honoured.removed)}
        for outcome in load.files:
            if outcome.status == "loaded":
                context.log.info(f"{outcome.relative_path}: {outcome.rows_loaded} rows loaded")
            if outcome.message:
                log = {"rejected": context.log.error, "loaded": context.log.warning}.get(
                    outcome.status, context.log.info
                )
                log(outcome.message)
        rejected = load.with_status("rejected")
        if rejected:
            raise dg.Failure(
                description=f"{len(rejected)} {family.name} file(s) rejected; nothing downstream is built:\n"
                + "\n".join(outcome.message for outcome in rejected),
                metadata={"rejected_files": [outcome.relative_path for outcome in rejected]},
            )
        delivery = {}
        if load.last_delivery_at is not None:  # what the freshness check judges: the newest file, not the run
            delivery["dagster/last_updated_timestamp"] = dg.TimestampMetadataValue(
                load.last_delivery_at.replace(tzinfo=UTC).timestamp()
            )
        return dg.MaterializeResult(
            metadata={
                **delivery,
                **applied,
                "dagster/row_count": load.table_rows,
                "files_loaded": len(load.with_status("loaded")),
                "files_already_loaded": len(load.with_status("already_loaded")),
                "rows_loaded": load.rows_loaded,
                "rows_quarantined": load.rows_quarantined,
                "quarantine_rows_total": load.quarantine_rows,
                "raw_dir": str(config.raw_dir),
            }
        )

    return ingest


# Dagster 1.13 marks the freshness-check builders as superseded by FreshnessPolicy, which reports freshness but
# is no asset check: these checks stay (a warning check per family, evaluated by the sensor and in every run),
# without printing Dagster's notice on every `make run`.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", dg.SupersessionWarning)

    def freshness_checks(family: Family) -> list[dg.AssetChecksDefinition]:
        """Warns (never blocks) when the family's newest extract loaded more than `fresh_within_hours` ago."""
        return list(
            dg.build_last_update_freshness_checks(
                assets=[dg.AssetKey(["raw", family.name])],
                lower_bound_delta=timedelta(hours=family.fresh_within_hours),
            )
        )

    raw_freshness_checks = [check for family in FAMILIES for check in freshness_checks(family)]
    raw_freshness_sensor = dg.build_sensor_for_freshness_checks(
        freshness_checks=raw_freshness_checks, name="raw_freshness", minimum_interval_seconds=15 * 60
    )

defs = dg.Definitions(
    assets=[ingest_asset(family) for family in FAMILIES],
    asset_checks=raw_freshness_checks,
    sensors=[raw_freshness_sensor],
)
