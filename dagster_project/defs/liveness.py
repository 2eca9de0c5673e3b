"""Runs whose process died (kill -9, a machine that went down) are found and ended, so that they do not keep
the warehouse pool's only slot, or the run queue's only place, for ever.

Dagster keeps a run STARTED, and the pool slot its step claimed, until the run's process reports otherwise;
a process killed with SIGKILL never does. So every run holds, from its first step until its process ends, an
exclusive lock on a file of its own (<DAGSTER_HOME>/customer360_runs/<run id>.lock): the operating system
releases it when the process dies, whatever killed it. Before a run starts (`make run`, the schedule, the
sensor), a run that Dagster thinks is going but whose lock nobody holds is reported failed and its pool slots
are freed.
"""

from __future__ import annotations

import fcntl
from pathlib import Path
from typing import IO

import dagster as dg

RUN_LOCKS = "customer360_runs"
GOING = [dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.CANCELING]
_held: dict[str, IO[bytes]] = {}  # run id -> the open, locked file (kept open until the process ends)


def _lock_file(instance: dg.DagsterInstance, run_id: str) -> Path:
    return Path(instance.root_directory) / RUN_LOCKS / f"{run_id}.lock"


def hold_run_lock(instance: dg.DagsterInstance | None, run_id: str | None) -> None:
    """Lock this run's file for the life of this process (idempotent within the process)."""
    if instance is None or run_id is None or run_id in _held or instance.is_ephemeral:
        return
    path = _lock_file(instance, run_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = path.open("ab")
    fcntl.flock(handle, fcntl.LOCK_EX)
    _held[run_id] = handle


def _is_dead(path: Path) -> bool:
    """True when nobody holds the lock on `path`: the process that locked it is gone."""
    with path.open("ab") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(handle, fcntl.LOCK_UN)
        return True


def end_dead_runs(instance: dg.DagsterInstance) -> list[str]:
    """Report failed every going run whose process died, and free its pool slots; one line per run ended."""
    ended: list[str] = []
    if instance.is_ephemeral:
        return ended  # an in-memory instance's runs die with the process that holds it
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=GOING)):
        path = _lock_file(instance, run.run_id)
        if run.run_id in _held or not path.exists() or not _is_dead(path):
            continue
        instance.report_run_failed(run, message="the process running it died (killed?); ended by a later run")
        if instance.event_log_storage.supports_global_concurrency_limits:
            instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        path.unlink(missing_ok=True)
        ended.append(f"ended run {run.run_id}: its process had died and it still held the warehouse pool")
    for path in (Path(instance.root_directory) / RUN_LOCKS).glob("*.lock"):
        locked_run = instance.get_run_by_id(path.stem)
        if locked_run is None or locked_run.is_finished:
            path.unlink(missing_ok=True)  # a finished run's lock
    return ended
