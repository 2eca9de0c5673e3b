"""The one Dagster code location of customer360: ingest -> dbt (staging, intermediate, marts) -> CLV ->
dbt (marts that read CLV, segments) -> exports and publishing, with the quality gates as blocking asset checks
along the way; a daily schedule and a new-extract sensor start runs."""

from __future__ import annotations

import dagster as dg

from dagster_project.defs import automation, clv, exports, ingest, quality, transform
from dagster_project.defs.resources import resources

defs = dg.Definitions.merge(
    ingest.defs,
    transform.defs,
    clv.defs,
    quality.defs,
    exports.defs,
    automation.defs,
    # One process, one step at a time: DuckDB allows a single writer.
    dg.Definitions(resources=resources(), executor=dg.in_process_executor),
)
