"""Automation: the daily schedule and the new-extract sensor, both materializing the whole graph
(docs/architecture.md).

One run at a time: the instance queue (dagster_home/dagster.yaml, max_concurrent_runs: 1) and the warehouse
pool keep a scheduled run and a sensor run from ever writing the warehouse together. Both first end the runs
whose process died (defs/liveness.py), which would otherwise keep the queue's place and the pool's slot.
"""

import hashlib
import json

import dagster as dg

from dagster_project.defs.liveness import end_dead_runs
from dagster_project.defs.resources import SettingsResource
from dagster_project.lib.contracts import FAMILIES
from dagster_project.lib.ingest import discover_files, file_sha256
from dagster_project.lib.settings import Settings

everything = dg.define_asset_job(
    "materialize_everything",
    selection=dg.AssetSelection.all(),
    description="Every asset and gate: ingest, dbt, CLV, gates, exports, publishing.",
    # Dagster instantiates a job's loggers only when the run config names them: customer360's console.
    config={"loggers": {"console": {"config": {}}}},
)


def daily_schedule(settings: Settings) -> dg.ScheduleDefinition:
    @dg.schedule(
        name="daily_refresh",
        job=everything,
        cron_schedule=settings.schedule_cron,
        execution_timezone=settings.schedule_timezone,
        description="The whole graph every day (C360_SCHEDULE_CRON in C360_SCHEDULE_TIMEZONE).",
        default_status=dg.DefaultScheduleStatus.STOPPED,
    )
    def daily_refresh(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        for line in end_dead_runs(context.instance):  # else a killed run would hold the queue for ever
            context.log.warning(line)
        return dg.RunRequest()

    return daily_refresh


def delivered_files(settings: Settings, known: dict[str, list]) -> dict[str, list]:
    """Every extract file under the raw folder: relative path -> [size, mtime_ns, sha256]. A file whose size and
    mtime match `known` keeps its known hash (no re-reading of unchanged files every minute)."""
    files: dict[str, list] = {}
    for family in FAMILIES:
        found, _ = discover_files(settings.raw_dir, family)
        for _, path in found:
            relative = path.relative_to(settings.raw_dir).as_posix()
            stat = path.stat()
            previous = known.get(relative)
            if previous and previous[:2] == [stat.st_size, stat.st_mtime_ns]:
                files[relative] = previous
            else:
                files[relative] = [stat.st_size, stat.st_mtime_ns, file_sha256(path)]
    return files


@dg.sensor(
    name="new_extracts",
    job=everything,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Starts a run when extract files with new content land in C360_RAW_DIR; the run key is the "
    "new contents' hashes, so the same delivery (even renamed) never runs twice.",
)
def new_extracts(context: dg.SensorEvaluationContext, settings: SettingsResource) -> dg.SensorResult:
    for line in end_dead_runs(context.instance):  # else a killed run would hold the queue for ever
        context.log.warning(line)
    config = settings.get()
    cursor = json.loads(context.cursor) if context.cursor else {"files": {}, "seen": []}
    files = delivered_files(config, cursor["files"])
    seen = set(cursor["seen"])
    new = sorted({entry[2] for entry in files.values()} - seen)
    next_cursor = json.dumps({"files": files, "seen": sorted(seen | set(new))})
    if not new:
        return dg.SensorResult(skip_reason="no extract with new content", cursor=next_cursor)
    new_paths = sorted(path for path, entry in files.items() if entry[2] in new)
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key="extracts-" + hashlib.sha256("\n".join(new).encode()).hexdigest()[:32],
                tags={"c360/new_files": ", ".join(new_paths)[:1000]},
            )
        ],
        cursor=next_cursor,
    )


# The schedule's cron and timezone are read when the code location loads (Dagster needs them then): the one
# place settings are read at import. Change C360_SCHEDULE_CRON / C360_SCHEDULE_TIMEZONE and reload.
defs = dg.Definitions(jobs=[everything], schedules=[daily_schedule(Settings.load())], sensors=[new_extracts])
