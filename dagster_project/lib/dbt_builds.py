"""Which dbt code and settings last built each dbt step into the warehouse (raw._dbt_build_log). The staging
and identity models are incremental: a run adds only what was delivered since, and the identity models
recompute what the records changed in the same build touch. If the SQL, macros, seeds or settings changed
since the last build, rows built by the old code would stay beside rows built by the new; and a build that
failed half-way leaves changes that later models of that build never saw. So a step rebuilds from scratch
(dbt --full-refresh) unless its last build succeeded with the same fingerprint.
Models that must never be rebuilt (the id ledger, RFM history) say full_refresh=false and keep their rows.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import duckdb

BUILD_LOG = "raw._dbt_build_log"
PARTIAL_PARSE = "partial_parse.msgpack"  # dbt's parsed project, in each dbt target folder
# What a build's result depends on besides the data; target/, logs/ and packages are not code.
CODE = ("dbt_project.yml", "models", "macros", "seeds", "tests")


def fingerprint(project_dir: Path, variables: dict[str, object]) -> str:
    """A hash of the dbt project's code (every file under CODE, by path and content) and the run's vars."""
    digest = hashlib.sha256(json.dumps(variables, sort_keys=True, default=str).encode())
    for entry in CODE:
        root = project_dir / entry
        for path in sorted([root] if root.is_file() else root.rglob("*")):
            if path.is_file():
                digest.update(path.relative_to(project_dir).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def _ensure_log(connection: duckdb.DuckDBPyConnection) -> None:
    connection.execute("create schema if not exists raw")
    connection.execute(
        f"create table if not exists {BUILD_LOG} "
        "(step varchar, fingerprint varchar, full_refresh boolean, run_id varchar, built_at timestamp)"
    )
    # Logs written before builds could fail half-way held successful builds only.
    connection.execute(f"alter table {BUILD_LOG} add column if not exists succeeded boolean default true")


def needs_full_refresh(connection: duckdb.DuckDBPyConnection, step: str, current: str) -> bool:
    """True unless the step's last build succeeded with the same fingerprint."""
    _ensure_log(connection)
    row = connection.execute(
        f"select fingerprint, succeeded from {BUILD_LOG} where step = $step order by built_at desc limit 1",
        {"step": step},
    ).fetchone()
    return row is None or row[0] != current or not row[1]


def start_build(
    connection: duckdb.DuckDBPyConnection,
    step: str,
    current: str,
    full_refresh: bool,
    run_id: str,
    at: datetime,
) -> None:
    """Log that a build of `step` starts: its fingerprint and whether it rebuilds from scratch. Until
    finish_build marks it succeeded, the next build of the step rebuilds from scratch."""
    _ensure_log(connection)
    connection.execute(
        f"insert into {BUILD_LOG} values ($step, $fingerprint, $full_refresh, $run, $at, false)",
        {"step": step, "fingerprint": current, "full_refresh": full_refresh, "run": run_id, "at": at},
    )


def finish_build(connection: duckdb.DuckDBPyConnection, step: str, run_id: str) -> None:
    """Mark the build of `step` in run `run_id` succeeded."""
    connection.execute(
        f"update {BUILD_LOG} set succeeded = true where step = $step and run_id = $run",
        {"step": step, "run": run_id},
    )


def share_partial_parse(target: Path) -> None:
    """Give a dbt step's target folder the newest parsed project of its sibling steps' folders, so that a
    step whose own is missing or older starts from the other's parse instead of parsing the whole project
    again (3-5 s). dbt checks the file against the project, vars and profile, and parses anew if it does not
    fit: a wrong guess costs nothing."""
    own = target / PARTIAL_PARSE
    siblings = [path for path in target.parent.glob(f"*/{PARTIAL_PARSE}") if path != own]
    newest = max(siblings, key=lambda path: path.stat().st_mtime, default=None)
    if newest is not None and (not own.exists() or newest.stat().st_mtime > own.stat().st_mtime):
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy2(newest, own)


def read_manifest(path: Path) -> dict[str, Any]:
    """dbt's manifest.json, parsed once per process and version of the file (1.7 MB: the code location's
    modules and dagster-dbt all read it while loading)."""
    return _parsed_manifest(path.resolve(), path.stat().st_mtime_ns)


@cache
def _parsed_manifest(path: Path, modified_ns: int) -> dict[str, Any]:
    return json.loads(path.read_text(encoding="utf-8"))
