"""Opening the DuckDB warehouse and describing what it holds."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import duckdb

SCHEMAS = ("raw", "staging", "intermediate", "marts")
# Seconds to wait before each new attempt while another process holds the file (a transient lock: a BI tool
# or notebook pointed at the warehouse, another run): about half a minute in all, then a clear error.
LOCK_WAITS = (1.0, 2.0, 4.0, 8.0, 8.0, 8.0)


def is_lock_error(error: BaseException) -> bool:
    """DuckDB's "Could not set lock on file": another process holds the file."""
    return "could not set lock" in str(error).lower()


class WarehouseLocked(RuntimeError):
    """Another process kept the warehouse file locked through every retry."""


def connect(
    path: Path,
    read_only: bool = False,
    lock_waits: Sequence[float] = LOCK_WAITS,
    sleep: Callable[[float], None] = time.sleep,
    memory_limit: str | None = None,
) -> duckdb.DuckDBPyConnection:
    """Open the warehouse file (created, with its folder, when absent and not read-only), retrying while
    another process holds its lock; with `memory_limit` (C360_DUCKDB_MEMORY_LIMIT), DuckDB spills past it."""
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    config = {} if memory_limit is None else {"memory_limit": memory_limit}
    for wait in lock_waits:
        try:
            return duckdb.connect(str(path), read_only=read_only, config=config)
        except duckdb.IOException as error:
            if not is_lock_error(error):
                raise
            sleep(wait)
    try:
        return duckdb.connect(str(path), read_only=read_only, config=config)
    except duckdb.IOException as error:
        if not is_lock_error(error):
            raise
        raise WarehouseLocked(
            f"{path} stayed locked by another process through {len(lock_waits)} retries "
            f"({sum(lock_waits):g} s): point BI tools and notebooks at the serving file (C360_SERVING), "
            f"not the warehouse. DuckDB said: {error}"
        ) from error


def table_row_counts(connection: duckdb.DuckDBPyConnection) -> list[tuple[str, str, str, int]]:
    """(schema, name, 'table' or 'view', rows) for every relation in the warehouse's schemas, in order."""
    relations = connection.execute(
        """
        select table_schema, table_name, case when table_type = 'VIEW' then 'view' else 'table' end
        from information_schema.tables
        where table_schema in (select unnest($schemas))
        order by list_position($schemas, table_schema), table_name
        """,
        {"schemas": list(SCHEMAS)},
    ).fetchall()
    counted = []
    for schema, name, kind in relations:
        quoted = f'"{schema}"."{name}"'
        counted.append(
            (schema, name, kind, connection.execute(f"select count(*) from {quoted}").fetchone()[0])
        )
    return counted
