"""Quality: the blocking data-quality gates (docs/delivery.md) as Dagster asset checks, and how well identity
matching did. Raw gates stop dbt; mart gates stop what reads the marts (the dbt models after CLV, exports)."""

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb

from dagster_project.defs.resources import (
    WAREHOUSE_POOL,
    SettingsResource,
    WarehouseResource,
    dbt_code,
)
from dagster_project.lib import gates
from dagster_project.lib.contracts import FAMILIES
from dagster_project.lib.expectations import GateResult, mart_suites, verdict_summary
from dagster_project.lib.identity_quality import measure, record, scores_as_dict
from dagster_project.lib.settings import Settings
from dagster_project.lib.warehouse import scalar

# A mart is gated when expectations/ holds a suite named after it.
GATED_MARTS = tuple(mart_suites())


# What a gate judges: the warehouse, the run's settings, its time and its run id -> a verdict per batch.
Judge = Callable[[duckdb.DuckDBPyConnection, Settings, datetime, str], list[GateResult]]
# Why there is nothing to judge this run (None: judge): the check then warns with the reason and logs no verdict.
NotApplicable = Callable[[duckdb.DuckDBPyConnection], str | None]


def gate_check(
    key: dg.AssetKey, name: str, description: str, judge: Judge, not_applicable: NotApplicable | None = None
) -> dg.AssetChecksDefinition:
    """A blocking asset check that runs `judge` on the warehouse, logs the verdicts in raw._gate_log and the
    run's report, and passes only if every batch passed; it says which expectation failed on how many rows."""

    @dg.asset_check(asset=key, name=name, blocking=True, pool=WAREHOUSE_POOL, description=description)
    def check(
        context: dg.AssetCheckExecutionContext, settings: SettingsResource, warehouse: WarehouseResource
    ) -> dg.AssetCheckResult:
        config = settings.get()
        at = datetime.now(UTC).replace(tzinfo=None)
        with warehouse.connect() as connection:
            reason = not_applicable(connection) if not_applicable else None
            if reason is not None:
                context.log.warning(f"{key.to_user_string()}: not checked: {reason}")
                return dg.AssetCheckResult(
                    passed=False,
                    severity=dg.AssetCheckSeverity.WARN,  # a warning: what follows still runs
                    description=f"not checked: {reason}",
                    metadata={"not_checked_because": reason},
                )
            results = judge(connection, config, at, context.run.run_id)
            gates.record(connection, context.run.run_id, results, at)
        for result in results:
            (context.log.info if result.success else context.log.error)(result.summary())
        report = (
            gates.write_report(config.export_dir / "validation", context.run.run_id, results, at)
            if results
            else None
        )
        return verdicts_check_result([result.as_dict() for result in results], report)

    return check


def verdicts_check_result(verdicts: list[dict[str, Any]], report: Path | None) -> dg.AssetCheckResult:
    """A gate's asset check result from its verdicts (GateResult.as_dict()): passed only if every batch did."""
    failed = [verdict for verdict in verdicts if not verdict["success"]]
    return dg.AssetCheckResult(
        passed=not failed,
        severity=dg.AssetCheckSeverity.ERROR,
        description="; ".join(verdict_summary(verdict) for verdict in failed) or None,
        metadata={
            "batches_checked": len(verdicts),
            "batches_failed": len(failed),
            "rows_checked": sum(verdict["rows"] for verdict in verdicts),
            "failures": dg.MetadataValue.json(failed),
            "report": str(report) if report else "",
        },
    )


def raw_gate(family: str) -> dg.AssetChecksDefinition:
    """Reports (read-only) the verdicts ingest logged for this run's new files of the family."""
    suite = f"raw_{family}"

    @dg.asset_check(
        asset=dg.AssetKey(["raw", family]),
        name="raw_gate",
        blocking=True,
        pool=WAREHOUSE_POOL,
        description=f"Suite expectations/{suite}.json on each newly loaded {family} file, applied by ingest "
        "before the file commits: a failing file is rejected (none of its rows load, failing rows to "
        "raw._quarantine) and this check fails, so dbt does not run.",
    )
    def check(
        context: dg.AssetCheckExecutionContext, settings: SettingsResource, warehouse: WarehouseResource
    ) -> dg.AssetCheckResult:
        with warehouse.connect() as connection:
            verdicts = gates.logged_verdicts(connection, context.run.run_id, suite)
        report = settings.get().export_dir / "validation" / f"{context.run.run_id}.md"
        return verdicts_check_result(verdicts, report if verdicts else None)

    return check


# Gated marts that may be absent from a run for a stated reason (a warning instead of a verdict).
UNGATED_WHEN = {"customer_clv": gates.clv_refusal}


def mart_gate(table: str) -> dg.AssetChecksDefinition:
    return gate_check(
        dg.AssetKey(["marts", table]),
        "mart_gate",
        f"Suite expectations/{table}.json on marts.{table}; a failure stops what reads it, exports included."
        + (
            " Warns instead when this run computed no CLV (marts.clv_status)."
            if table in UNGATED_WHEN
            else ""
        ),
        lambda connection, config, _at, _run_id: [
            gates.gate_table(connection, f"marts.{table}", table, dbt_code(config))
        ],
        UNGATED_WHEN.get(table),
    )


@dg.asset(
    key=["marts", "identity_match_quality"],
    group_name="marts",
    kinds={"python", "duckdb"},
    pool=WAREHOUSE_POOL,
    deps=[
        dg.AssetKey(["marts", "customer_id_map"]),
        dg.AssetKey(["marts", "dim_customers"]),
        dg.AssetKey(["intermediate", "int_identity_keys_blocked"]),
        dg.AssetKey(["intermediate", "int_identity_edges"]),
        dg.AssetKey(["intermediate", "int_identity_probabilistic_links"]),
        dg.AssetKey(["marts", "identity_review_queue"]),
    ],
)
def identity_match_quality(
    context: dg.AssetExecutionContext, settings: SettingsResource, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    """One row per run: source records, customers, cluster-size distribution, largest clusters, blocked key
    values and key issues by type, the record pairs each pass linked, the probabilistic pass's match-probability
    histogram and review queue, and pairwise precision/recall/F1 against the truth file when one is given
    (C360_IDENTITY_TRUTH, or truth/identity.csv beside the raw folder): of the customers, of the exact pass
    alone, and of the probabilistic pass's links. Counts only, no personal data."""
    config = settings.get()
    truth_file = config.identity_truth_file
    with warehouse.connect() as connection:
        quality = measure(connection, truth_file, datetime.now(UTC).replace(tzinfo=None))
        record(connection, quality)
        rows = scalar(connection, "select count(*) from marts.identity_match_quality")
    metadata: dict[str, Any] = {
        "dagster/row_count": rows,
        "source_records": quality.source_records,
        "records_without_customer_file": quality.records_without_customer_file,
        "customers": quality.customers,
        "cluster_sizes": dg.MetadataValue.json({str(size): n for size, n in quality.cluster_sizes.items()}),
        "largest_clusters": dg.MetadataValue.json(quality.largest_clusters),
        "blocked_keys": dg.MetadataValue.json(quality.blocked_keys),
        "key_issues": dg.MetadataValue.json(quality.key_issues),
        "links_by_pass": dg.MetadataValue.json(quality.links_by_pass),
        "match_probability_histogram": dg.MetadataValue.json(quality.match_probability_histogram),
        "review_queue": quality.review_queue,
    }
    if quality.scores:
        metadata.update({f"pairwise_{name}": value for name, value in scores_as_dict(quality.scores).items()})
        metadata["scores_by_pass"] = dg.MetadataValue.json(quality.scores_by_pass)
        metadata["truth_file"] = quality.truth_file
        context.log.info(
            f"identity matching: precision {quality.scores.precision:.4f}, recall {quality.scores.recall:.4f}"
        )
    return dg.MaterializeResult(metadata=metadata)


defs = dg.Definitions(
    assets=[identity_match_quality],
    asset_checks=[
        *(raw_gate(family.name) for family in FAMILIES),
        *(mart_gate(table) for table in GATED_MARTS),
    ],
)
