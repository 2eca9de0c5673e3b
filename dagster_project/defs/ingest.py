"""Ingest assets: one per raw family, loading every extract file into raw.<family> (docs/contracts.md), and the
freshness checks that warn when a family's extracts stop arriving."""

import warnings
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
import duckdb

from dagster_project.defs.exports import SEGMENTS
from dagster_project.defs.resources import WAREHOUSE_POOL, SettingsResource, WarehouseResource
from dagster_project.defs.transform import PROJECT_RELATIONS
from dagster_project.lib import erasure, gates, spark
from dagster_project.lib.contracts import FAMILIES, Family
from dagster_project.lib.delivery import recover
from dagster_project.lib.expectations import GateResult
from dagster_project.lib.ingest import load_family
from dagster_project.lib.opt_outs import honour, new_opt_outs


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
            "Each file loads once (content-hash ledger raw._load_log); unparseable rows go to raw._quarantine. "
            f"Each file's rows are validated with suite expectations/raw_{family.name}.json before they commit: "
            "a file that fails is rejected (its failing rows to raw._quarantine) and its raw_gate check fails."
            + (
                " Its requests are executed at once: the people they name leave every schema, the serving file "
                "and the export folders (raw._erasure_log, docs/privacy.md)."
                if family.name == "erasure_requests"
                else " Rows of people an erasure request erased leave raw as they load (docs/privacy.md)."
                if family.name in erasure.PERSONAL_FAMILIES
                else ""
            )
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
        run_id = context.run.run_id
        applied: dict[str, Any] = {}
        rejected_opt_outs: dict[str, set[int]] = {}

        def on_verdict(file_connection: duckdb.DuckDBPyConnection, verdict: GateResult) -> None:
            """In the file's transaction: log the verdict; a consents file the gate rejects is about to leave
            raw, and the opt-outs among its rows are kept to be honoured all the same (the safe side)."""
            gates.record(file_connection, run_id, [verdict], loaded_at)
            if family.name == "consents" and not verdict.success:
                for channel, customers in new_opt_outs(file_connection, loaded_at).items():
                    rejected_opt_outs[channel] = rejected_opt_outs.get(channel, set()) | customers

        with warehouse.connect() as connection:
            gates.ensure_gate_tables(connection)
            load = load_family(
                connection,
                config.raw_dir,
                family,
                config.max_quarantine_share,
                loaded_at,
                gate=gates.RawGate.for_family(family.name, gates.raw_parameters(config, loaded_at)),
                on_verdict=on_verdict,
            )
            if family.name == "consents" and (load.rows_loaded or rejected_opt_outs):
                # Before anything can fail: what is already delivered honours the opt-outs just delivered.
                honoured = honour(
                    connection,
                    loaded_at,
                    config.export_dir,
                    config.serving,
                    {segment.name: segment.channel for segment in SEGMENTS},
                    also=rejected_opt_outs,
                )
                if honoured.removed:
                    context.log.warning(honoured.summary())
                applied = {"opt_outs_applied_to_delivered": dg.MetadataValue.json(honoured.removed)}
            # Erased people: what this load brought of them leaves raw; new requests are executed at once.
            erased = erasure.sweep(connection, family.name, loaded_at, config.export_dir, run_id)
            if family.name == "erasure_requests":
                erased = erasure.execute(
                    connection, loaded_at, config.export_dir, config.serving, config.warehouse, run_id
                )
                if config.engine == "spark" and any(
                    outcome.status == "erased" for outcome in erased.requests
                ):
                    # Spark's tables hold the erased people's rows too: the next build starts anew.
                    context.log.warning(
                        f"spark: {spark.forget(config, PROJECT_RELATIONS)}; the next build rebuilds"
                    )
            if erased.requests or erased.swept:
                context.log.warning(erased.summary())
                applied["erasure"] = dg.MetadataValue.json(erased.as_report())
                if erased.report:
                    applied["erasure_report"] = dg.MetadataValue.path(str(erased.report))
        if load.verdicts:
            gates.write_report(config.export_dir / "validation", run_id, load.verdicts, loaded_at)
        for outcome in load.files:
            if outcome.status == "loaded":
                context.log.info(f"{outcome.relative_path}: {outcome.rows_loaded} rows loaded")
            if outcome.message:
                log = {
                    "rejected": context.log.error,
                    "failed_gate": context.log.error,
                    "loaded": context.log.warning,
                }.get(outcome.status, context.log.info)
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
        assert family.fresh_within_hours is not None
        return list(
            dg.build_last_update_freshness_checks(
                assets=[dg.AssetKey(["raw", family.name])],
                lower_bound_delta=timedelta(hours=family.fresh_within_hours),
            )
        )

    raw_freshness_checks = [
        check
        for family in FAMILIES
        if family.fresh_within_hours is not None
        for check in freshness_checks(family)
    ]
    raw_freshness_sensor = dg.build_sensor_for_freshness_checks(
        freshness_checks=raw_freshness_checks, name="raw_freshness", minimum_interval_seconds=15 * 60
    )

defs = dg.Definitions(
    assets=[ingest_asset(family) for family in FAMILIES],
    asset_checks=raw_freshness_checks,
    sensors=[raw_freshness_sensor],
)
