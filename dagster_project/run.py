"""`make run`: end the runs whose process died, materialize every asset on the Dagster instance (DAGSTER_HOME),
print a line per step and a closing account: where the results are, or what failed and what to do next.
The run and its full event log are kept in the instance (`make dev` -> Runs)."""

from __future__ import annotations

import sys
import time

import dagster as dg

from dagster_project.defs.automation import everything
from dagster_project.defs.liveness import end_dead_runs
from dagster_project.lib.settings import Settings
from dagster_project.summary import failure_lines, success_lines


def main() -> int:
    from dagster_project.definitions import defs

    settings = Settings.load()
    instance = dg.DagsterInstance.get()
    for line in end_dead_runs(instance):
        print(line)
    print(f"customer360: {settings.raw_dir} -> {settings.warehouse}")
    started = time.monotonic()
    result = defs.resolve_job_def(everything.name).execute_in_process(instance=instance, raise_on_error=False)
    seconds = time.monotonic() - started
    lines = (success_lines if result.success else failure_lines)(result, settings, seconds)
    print("\n" + "\n".join(lines))
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main())
