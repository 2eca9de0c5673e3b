"""The one Dagster code location of customer360: ingest -> dbt (staging, intermediate, marts) -> CLV ->
dbt (marts that read CLV, segments) -> exports and publishing, with the quality gates as blocking asset checks
along the way; a daily schedule and a new-extract sensor start runs."""

from __future__ import annotations

from collections.abc import Mapping

import dagster as dg

from dagster_project.defs import automation, clv, exports, identity, ingest, offers, quality, transform
from dagster_project.defs.console import concise_console
from dagster_project.defs.resources import resources

defs = dg.Definitions.merge(
    ingest.defs,
    transform.defs,
    identity.defs,
    clv.defs,
    offers.defs,
    quality.defs,
    exports.defs,
    automation.defs,
    # One process, one step at a time: DuckDB allows a single writer.
    dg.Definitions(
        resources=resources(), executor=dg.in_process_executor, loggers={"console": concise_console}
    ),
)


def materialize_in_process(
    settings: Mapping[str, str],
    selection: str | dg.AssetSelection = "*",
    instance: dg.DagsterInstance | None = None,
) -> dg.ExecuteInProcessResult:
    """Materialize the selected assets and their checks in this process, as `make run` does, with settings
    overrides (for tests and benchmarks); a failed step fails the result instead of raising."""
    return dg.materialize(
        [*(defs.assets or []), *(defs.asset_checks or [])],  # type: ignore[list-item]  # no cacheable assets
        resources=resources(settings),
        selection=selection,
        instance=instance,
        raise_on_error=False,
    )
