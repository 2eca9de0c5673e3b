"""Opening the DuckDB warehouse and describing what it holds."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from dagster_project.lib.lazy import lazy_module

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = lazy_module("pandas")

SCHEMAS = ("raw", "staging", "intermediate", "marts")
# Seconds to wait before each new attempt while another process holds the file (a transient lock: a BI tool
# or notebook pointed at the warehouse, another run): about a quarter of a minute in all, then a clear error.
LOCK_WAITS = (1.0, 2.0, 4.0, 8.0)
# Once a connection gave up on a file, later connections in the same process (the next steps of the same run:
# steps run in one process) try once instead of waiting again, for this long: a run fails once, early,
# instead of each of its steps waiting out the retries in turn.
GAVE_UP_FOR_SECONDS = 120.0
_gave_up_at: dict[Path, float] = {}


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
    config: dict[str, str | bool | int | float | list[str]] = (
        {} if memory_limit is None else {"memory_limit": memory_limit}
    )
    gave_up_at = _gave_up_at.get(path.resolve())
    if gave_up_at is not None and time.monotonic() - gave_up_at < GAVE_UP_FOR_SECONDS:
        lock_waits = ()
    for wait in lock_waits:
        try:
            return duckdb.connect(str(path), read_only=read_only, config=config)
        except duckdb.IOException as error:
            if not is_lock_error(error):
                raise
            sleep(wait)
    try:
        connection = duckdb.connect(str(path), read_only=read_only, config=config)
    except duckdb.IOException as error:
        if not is_lock_error(error):
            raise
        _gave_up_at[path.resolve()] = time.monotonic()
        raise WarehouseLocked(
            f"{path} is locked by another process (waited {sum(lock_waits):g} s): point BI tools and "
            f"notebooks at the serving file (C360_SERVING), not the warehouse, close it and run again. "
            f"DuckDB said: {_first_line(error)}"
        ) from error
    _gave_up_at.pop(path.resolve(), None)
    return connection


def one_row(connection: duckdb.DuckDBPyConnection, query: str, parameters: object = None) -> tuple[Any, ...]:
    """The first row of a query that always returns one (an aggregate)."""
    row = connection.execute(query, parameters).fetchone()
    if row is None:
        raise LookupError(f"no row from: {query.strip().splitlines()[0]}")
    return row


def sql_literal(text: str) -> str:
    """`text` as an SQL string literal, for the few statements that take no parameters (COMMENT ON, a CASE
    built from names the code owns)."""
    return "'" + text.replace("'", "''") + "'"


def scalar(connection: duckdb.DuckDBPyConnection, query: str, parameters: object = None) -> Any:
    """The first column of the first row of a query that always returns one (a count, a max, a setting)."""
    return one_row(connection, query, parameters)[0]


@contextmanager
def transaction(connection: duckdb.DuckDBPyConnection) -> Iterator[duckdb.DuckDBPyConnection]:
    """What the block writes commits together, or not at all: any error rolls it back and is raised again."""
    connection.begin()
    try:
        yield connection
        connection.commit()
    except BaseException:
        connection.rollback()
        raise


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0]


def has_table(
    connection: duckdb.DuckDBPyConnection, schema: str, table: str, catalog: str | None = None
) -> bool:
    """Whether `schema`.`table` exists (in `catalog`, else the connection's database)."""
    return bool(
        scalar(
            connection,
            "select count(*) from duckdb_tables() where schema_name = $schema and table_name = $table "
            "and database_name = coalesce($catalog, current_database())",
            {"schema": schema, "table": table, "catalog": catalog},
        )
    )


def has_view(connection: duckdb.DuckDBPyConnection, schema: str, view: str) -> bool:
    """Whether `schema`.`view` is a view of the connection's database."""
    return bool(
        scalar(
            connection,
            "select count(*) from duckdb_views() where schema_name = $schema and view_name = $view "
            "and database_name = current_database()",
            {"schema": schema, "view": view},
        )
    )


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
        counted.append((schema, name, kind, scalar(connection, f"select count(*) from {quoted}")))
    return counted


def write_python_marts(
    connection: duckdb.DuckDBPyConnection,
    tables: Mapping[str, str],
    replaced: Sequence[str],
    frames: Mapping[str, pd.DataFrame | duckdb.DuckDBPyRelation],
) -> None:
    """What a Python asset (CLV, the offer model) writes into `marts`, in one transaction: the `replaced`
    tables made anew from their definition (name -> column definitions), the others (appended to, kept across
    runs) created when absent and given the columns a newer definition added; every non-empty frame appended
    to its table (a relation, one on `connection`, is inserted as it is)."""
    connection.execute("create schema if not exists marts")
    with transaction(connection):
        for name, columns in tables.items():
            if name in replaced:
                connection.execute(f"create or replace table marts.{name} ({columns})")
            else:
                connection.execute(f"create table if not exists marts.{name} ({columns})")
                _add_new_columns(connection, name, columns)
        for name, frame in frames.items():
            if isinstance(frame, duckdb.DuckDBPyRelation) or not frame.empty:
                connection.register("incoming", frame)
                column_list = ", ".join(frame.columns)
                connection.execute(
                    f"insert into marts.{name} ({column_list}) select {column_list} from incoming"
                )
                connection.unregister("incoming")


def _add_new_columns(connection: duckdb.DuckDBPyConnection, name: str, columns: str) -> None:
    """Columns of the definition that marts.<name> (written by an older version) lacks, added (nullable: the
    rows already there have no value)."""
    connection.execute(f"create or replace temporary table definition_of_{name} ({columns})")
    wanted = connection.execute(
        f"select column_name, column_type from (describe definition_of_{name})"
    ).fetchall()
    have = {
        row[0] for row in connection.execute(f"select column_name from (describe marts.{name})").fetchall()
    }
    for column, column_type in wanted:
        if column not in have:
            connection.execute(f"alter table marts.{name} add column {column} {column_type}")
    connection.execute(f"drop table definition_of_{name}")
