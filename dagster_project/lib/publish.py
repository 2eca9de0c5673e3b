"""Publishing for BI (DESIGN §8): the marts and segments copied into a new serving file that replaces
C360_SERVING by one rename.

A DuckDB file has one writer or many readers across processes, never both: BI tools and notebooks read the
serving file, never the warehouse, so they never block a run and a run never blocks them. A reader that
opened the previous serving file keeps reading it (its snapshot stays consistent); a publish that fails
leaves the previous file in place. The file is written by this DuckDB (1.4 LTS) in its default storage
version, which DuckDB 1.x clients (the JDBC/ODBC drivers BI tools embed, Python) open.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb

PUBLISHED_SCHEMAS = ("marts", "segments")


@dataclass(frozen=True)
class Publication:
    path: Path
    tables: dict[str, int]  # schema.table -> rows
    bytes: int


def publish(
    connection: duckdb.DuckDBPyConnection, serving: Path, published_at: datetime, run_id: str
) -> Publication:
    """Copy every table and view of PUBLISHED_SCHEMAS from the warehouse `connection` into a new file, with a
    one-row marts.publication (when, which run, as_of, DuckDB version), then move it over `serving`."""
    serving.parent.mkdir(parents=True, exist_ok=True)
    partial = serving.with_name(f".{serving.name}.partial-{uuid.uuid4().hex}")
    relations = connection.execute(
        """
        select table_schema, table_name from information_schema.tables
        where table_catalog = current_database() and table_schema in (select unnest($schemas))
        order by 1, 2
        """,
        {"schemas": list(PUBLISHED_SCHEMAS)},
    ).fetchall()
    tables: dict[str, int] = {}
    quoted = str(partial).replace("'", "''")  # ATTACH takes no parameters; the path is ours
    connection.execute(f"attach '{quoted}' as serving")
    try:
        for schema in PUBLISHED_SCHEMAS:
            connection.execute(f"create schema if not exists serving.{schema}")
        for schema, name in relations:
            connection.execute(f'create table serving.{schema}."{name}" as select * from {schema}."{name}"')
            tables[f"{schema}.{name}"] = connection.execute(
                f'select count(*) from serving.{schema}."{name}"'
            ).fetchone()[0]
        connection.execute(
            """
            create table serving.marts.publication as
            select $at::timestamp as published_at, $run as run_id,
                (select max(as_of) from marts.observation_window) as as_of, version() as duckdb_version
            """,
            {"at": published_at, "run": run_id},
        )
        connection.execute("detach serving")
        os.replace(partial, serving)
    except BaseException:
        if "serving" in {
            row[0] for row in connection.execute("select database_name from duckdb_databases()").fetchall()
        }:
            connection.execute("detach serving")
        for leftover in (partial, partial.with_name(partial.name + ".wal")):
            leftover.unlink(missing_ok=True)
        raise
    return Publication(serving, tables, serving.stat().st_size)
