"""Delivery (docs/delivery.md): what leaves the warehouse for people, the segment files of
<export_dir>/<as_of>/ and the serving file BI reads, replaced together or not at all.

Both are written complete under hidden names first (lib/exports.py, lib/publish.py). Then a journal beside the
warehouse lists the renames that put them in place, the renames are made, and the journal is removed. A run
killed between the renames leaves the journal: the next delivery, or the start of the next run, makes the
renames that are left (both halves were complete and gated), so marketers' files and the BI file never come
from different runs for longer than the gap between two renames. Leftovers of a killed run (a partial serving
file, a partial or retired export folder) are removed at the start of the next run.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb

from dagster_project.lib.exports import PreparedSegment, stage_exports, swap_in
from dagster_project.lib.publish import Descriptions, Publication, partial_name, stage_publication


@dataclass(frozen=True)
class Delivered:
    manifest: dict[str, Any]
    export_folder: Path
    publication: Publication


def journal_path(warehouse: Path) -> Path:
    """Where an unfinished delivery's renames are kept: beside the warehouse (data/warehouse.delivery.json)."""
    return warehouse.with_name(warehouse.stem + ".delivery.json")


def deliver(
    connection: duckdb.DuckDBPyConnection,
    warehouse: Path,
    export_dir: Path,
    serving: Path,
    as_of: date,
    prepared: Sequence[PreparedSegment],
    gates: dict[str, Any],
    run_id: str,
    at: datetime,
    keys_by_table: dict[str, tuple[str, ...]] | None = None,
    descriptions: Descriptions | None = None,
) -> Delivered:
    """Write the exports and the serving file (its segment tables = the exported rows), then put both in place."""
    recover(warehouse, export_dir, serving)
    staged_folder, target, manifest = stage_exports(export_dir, as_of, prepared, gates, at)
    try:
        staged = stage_publication(connection, serving, at, run_id, keys_by_table, prepared, descriptions)
    except BaseException:
        shutil.rmtree(staged_folder, ignore_errors=True)
        raise
    moves = [(staged.partial, serving), (staged_folder, target)]
    journal = journal_path(warehouse)
    pending = journal.with_name(journal.name + ".writing")
    pending.write_text(json.dumps({"run_id": run_id, "moves": [[str(a), str(b)] for a, b in moves]}))
    os.replace(pending, journal)  # from here on, the delivery is decided: recover() completes it
    _make_moves(moves)
    journal.unlink()
    return Delivered(manifest, target, staged.publication())


def _make_moves(moves: Sequence[tuple[Path, Path]]) -> None:
    """Put each staged file or folder in place of its target; idempotent (a move already made is skipped)."""
    for staged, target in moves:
        if staged.is_dir():
            swap_in(staged, target)
        elif staged.exists():  # else made before an interruption
            os.replace(staged, target)


def recover(warehouse: Path, export_dir: Path, serving: Path) -> list[str]:
    """Finish a delivery a killed run left half-renamed, then remove what killed runs left half-written.
    Returns what was done, one line each (no personal data: paths only)."""
    done = []
    journal = journal_path(warehouse)
    if journal.exists():
        moves = [(Path(a), Path(b)) for a, b in json.loads(journal.read_text())["moves"]]
        _make_moves(moves)
        journal.unlink()
        done.append(f"finished the delivery an interrupted run had begun ({journal.name})")
    journal.with_name(journal.name + ".writing").unlink(missing_ok=True)
    leftovers = [*serving.parent.glob(partial_name(serving) + "*")] if serving.parent.is_dir() else []
    if export_dir.is_dir():
        leftovers += [
            path for path in export_dir.glob(".*") if ".partial-" in path.name or ".retired-" in path.name
        ]
    for path in leftovers:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
        done.append(f"removed {path.name}, left by an interrupted run")
    return done
