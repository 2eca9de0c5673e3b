"""Opening the DuckDB warehouse and describing what it holds."""

from __future__ import annotations

from pathlib import Path

import duckdb

SCHEMAS = ("raw", "staging", "intermediate", "marts")


def connect(path: Path, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open the warehouse file (created, with its folder, when absent and not read-only)."""
    if not read_only:
        path.parent.mkdir(parents=True, exist_ok=True)
    return duckdb.connect(str(path), read_only=read_only)


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
