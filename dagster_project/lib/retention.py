"""Retention (docs/delivery.md): what customer360 keeps of its own outputs, and for how long. Export folders
(`<export_dir>/<as_of>/`, by their manifest's created_at), validation reports (`<export_dir>/validation/`),
the gate log (`raw._gate_log`) and Dagster's run history older than C360_RETENTION_DAYS are removed by the
daily run; the newest export folder always stays, whatever its age (it is what marketers take). Every removal
is logged in `raw._retention_log` (what, which, when it was made, when it was removed, how many): names of folders and
runs only, never their contents.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import duckdb

from dagster_project.lib.gates import GATE_LOG
from dagster_project.lib.warehouse import has_table, transaction

RETENTION_LOG = "raw._retention_log"
VALIDATION_FOLDER = "validation"


@dataclass(frozen=True)
class Removal:
    kind: str  # export_folder, validation_report, gate_log_rows, dagster_run
    name: str  # the folder, file, run id or table
    made_at: datetime | None
    count: int = 1  # items removed (rows, for the gate log)


@dataclass
class RetentionRun:
    cutoff: datetime
    removed: list[Removal] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for removal in self.removed:
            counts[removal.kind] = counts.get(removal.kind, 0) + removal.count
        return counts


def _export_folders(export_dir: Path) -> list[tuple[Path, datetime]]:
    """The export folders in place (<as_of>/ with a manifest), with when they were made, oldest first."""
    folders = []
    for manifest in export_dir.glob("*/manifest.json") if export_dir.is_dir() else []:
        folder = manifest.parent
        if folder.name.startswith("."):
            continue  # a partial or retired folder: recovery's to remove
        try:
            made_at = datetime.fromisoformat(json.loads(manifest.read_text(encoding="utf-8"))["created_at"])
        except (ValueError, KeyError, TypeError):
            made_at = datetime.fromtimestamp(manifest.stat().st_mtime)
        folders.append((folder, made_at))
    return sorted(folders, key=lambda item: (item[1], item[0].name))


def old_export_folders(export_dir: Path, cutoff: datetime) -> list[tuple[Path, datetime]]:
    """Export folders made before `cutoff`, the newest folder excepted."""
    folders = _export_folders(export_dir)
    return [(folder, made_at) for folder, made_at in folders[:-1] if made_at < cutoff]


def old_validation_reports(export_dir: Path, cutoff: datetime) -> list[tuple[Path, datetime]]:
    folder = export_dir / VALIDATION_FOLDER
    reports = [(path, datetime.fromtimestamp(path.stat().st_mtime)) for path in folder.glob("*.md")]
    return sorted((path, made_at) for path, made_at in reports if made_at < cutoff)


def apply(
    export_dir: Path,
    connection: duckdb.DuckDBPyConnection,
    days: int,
    now: datetime,
    old_runs: Iterable[tuple[str, datetime]] = (),
    delete_run: Callable[[str], None] | None = None,
) -> RetentionRun:
    """Remove what is older than `days` before `now` (see the module's docstring) and log it. `old_runs`
    are Dagster runs (id, created) made before the cutoff; `delete_run(run_id)` removes one."""
    run = RetentionRun(cutoff=now - timedelta(days=days))
    for folder, made_at in old_export_folders(export_dir, run.cutoff):
        shutil.rmtree(folder)
        run.removed.append(Removal("export_folder", folder.name, made_at))
    for report, made_at in old_validation_reports(export_dir, run.cutoff):
        report.unlink()
        run.removed.append(Removal("validation_report", report.name, made_at))
    if delete_run is not None:
        for run_id, created in old_runs:
            delete_run(run_id)
            run.removed.append(Removal("dagster_run", run_id, created))
    connection.execute(
        f"create table if not exists {RETENTION_LOG} "
        "(removed_at timestamp, kind varchar, name varchar, made_at timestamp, removed_count bigint)"
    )
    with transaction(connection):
        if has_table(connection, *GATE_LOG.split(".")):
            rows = connection.execute(
                f"delete from {GATE_LOG} where checked_at < $cutoff", {"cutoff": run.cutoff}
            ).fetchone()
            if rows and rows[0]:
                run.removed.append(Removal("gate_log_rows", GATE_LOG, None, int(rows[0])))
        for removal in run.removed:
            connection.execute(
                f"insert into {RETENTION_LOG} values ($at, $kind, $name, $made_at, $count)",
                {
                    "at": now,
                    "kind": removal.kind,
                    "name": removal.name,
                    "made_at": removal.made_at,
                    "count": removal.count,
                },
            )
    return run
