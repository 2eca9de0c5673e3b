"""Publishing for BI (docs/delivery.md): the marts, and the segments' rows exactly as they were exported,
copied into a new serving file that replaces C360_SERVING by one rename (lib/delivery.py makes that rename
together with the export folder's).

A segment table in the serving file holds the rows of its export (consent and complaint rules applied, cells
cleaned: lib/exports.prepare), never the segment view of the warehouse: a BI user must not be able to take out
a customer the export refused. Without prepared segments, no segment table is published.

A DuckDB file has one writer or many readers across processes, never both: BI tools and notebooks read the
serving file, never the warehouse, so they never block a run and a run never blocks them. A reader that
opened the previous serving file keeps reading it (its snapshot stays consistent); a publish that fails
leaves the previous file in place. The file is written by this DuckDB (1.4 LTS) in its default storage
version, which DuckDB 1.x clients (the JDBC/ODBC drivers BI tools embed, Python) open.

The new file starts as a copy of the previous one. Every table is then replaced whole, except the tables that
grow by builds (the facts, the RFMT history): dbt replaces their rows by a key (delete+insert) and stamps each
row it writes with the build's start (`built_at`), so only the rows written since the previous file's newest
`built_at` are copied, replacing the rows of the same keys. Copying those tables whole each day would cost
time proportional to all history (at 1,000,000 customers: 14 of 27 s on the second day, and the RFMT history
gains 800,000 rows a day). The copy is checked: the table must end with the warehouse's row count, else it
is copied whole.
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from dagster_project.lib import dbt_builds
from dagster_project.lib.exports import SEGMENT_SCHEMA, PreparedSegment
from dagster_project.lib.warehouse import one_row, scalar, sql_literal

PUBLISHED_SCHEMAS = ("marts", SEGMENT_SCHEMA)
COPIED_SCHEMAS = ("marts",)  # copied from the warehouse; segments come from their exports' rows
ROW_VERSION = "built_at"  # the column dbt stamps with the start of the build that wrote the row


@dataclass(frozen=True)
class Publication:
    path: Path
    tables: dict[str, int]  # schema.table -> rows
    bytes: int
    copied: dict[str, int]  # schema.table -> rows written into the file by this publish


@dataclass(frozen=True)
class StagedPublication:
    """A complete new serving file at `partial`, not yet renamed over `serving`."""

    partial: Path
    serving: Path
    tables: dict[str, int]
    copied: dict[str, int]

    def publication(self) -> Publication:
        return Publication(self.serving, self.tables, self.serving.stat().st_size, self.copied)


def partial_name(serving: Path) -> str:
    """The prefix of a serving file being written (a leftover of one a killed run was writing)."""
    return f".{serving.name}.partial-"


# The one table publishing itself writes.
PUBLICATION_DESCRIPTIONS = {
    "": "One row: when this serving file was published, by which run, for which as_of, by which DuckDB.",
    "published_at": "When the file was published (UTC).",
    "run_id": "The Dagster run that published it.",
    "as_of": "The observation date of its marts.",
    "duckdb_version": "The DuckDB version that wrote it.",
}

Descriptions = Mapping[str, Mapping[str, str]]  # schema.table -> {"": the table's, column: the column's}


def descriptions_from_manifest(manifest_path: Path) -> dict[str, dict[str, str]]:
    """schema.table -> its description ("") and its columns' descriptions, for every published dbt model and
    every source table (the marts Python assets write), from dbt's manifest."""
    manifest = dbt_builds.read_manifest(manifest_path)
    described: dict[str, dict[str, str]] = {"marts.publication": dict(PUBLICATION_DESCRIPTIONS)}
    entries = [
        (node["schema"], node["alias"], node)
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model" and node["schema"] in PUBLISHED_SCHEMAS
    ] + [
        (source["schema"], source.get("identifier") or source["name"], source)
        for source in manifest["sources"].values()
        if source["schema"] in PUBLISHED_SCHEMAS
    ]
    for schema, name, entry in entries:
        described[f"{schema}.{name}"] = {
            "": " ".join(entry.get("description", "").split()),
            **{
                column: " ".join(spec.get("description", "").split())
                for column, spec in entry["columns"].items()
            },
        }
    return described


def keys_of_tables_built_by_parts(manifest_path: Path) -> dict[str, tuple[str, ...]]:
    """schema.table -> the key dbt replaces rows by, for the published incremental models that delete+insert
    by a unique key and stamp ROW_VERSION."""
    manifest = dbt_builds.read_manifest(manifest_path)
    keys: dict[str, tuple[str, ...]] = {}
    for node in manifest["nodes"].values():
        config = node.get("config", {})
        if (
            node["resource_type"] == "model"
            and node["schema"] in PUBLISHED_SCHEMAS
            and config.get("materialized") == "incremental"
            and config.get("incremental_strategy") == "delete+insert"
            and config.get("unique_key")
            and ROW_VERSION in node["columns"]
        ):
            unique_key = config["unique_key"]
            keys[f"{node['schema']}.{node['alias']}"] = (
                (unique_key,) if isinstance(unique_key, str) else tuple(unique_key)
            )
    return keys


def publish(
    connection: duckdb.DuckDBPyConnection, serving: Path, published_at: datetime, run_id: str, *options: Any
) -> Publication:
    """stage_publication (the same arguments), then move the new file over `serving` at once."""
    staged = stage_publication(connection, serving, published_at, run_id, *options)
    os.replace(staged.partial, serving)
    return staged.publication()


def stage_publication(
    connection: duckdb.DuckDBPyConnection,
    serving: Path,
    published_at: datetime,
    run_id: str,
    keys_by_table: Mapping[str, Sequence[str]] | None = None,
    segments: Sequence[PreparedSegment] = (),
    descriptions: Descriptions | None = None,
) -> StagedPublication:
    """Write a new serving file beside `serving`: every table and view of COPIED_SCHEMAS from the warehouse
    `connection`, a table per prepared segment holding its exported rows, and a one-row marts.publication
    (when, which run, as_of, DuckDB version). `keys_by_table` names the tables built by parts (see the module
    docstring) and their keys. `descriptions` become the tables' and columns' comments, which BI tools show.
    A failure removes the partial file."""
    keys_by_table = keys_by_table or {}
    serving.parent.mkdir(parents=True, exist_ok=True)
    partial = serving.with_name(f"{partial_name(serving)}{uuid.uuid4().hex}")
    relations = connection.execute(
        """
        select table_schema, table_name from information_schema.tables
        where table_catalog = current_database() and table_schema in (select unnest($schemas))
        order by 1, 2
        """,
        {"schemas": list(COPIED_SCHEMAS)},
    ).fetchall()
    tables: dict[str, int] = {}
    copied: dict[str, int] = {}
    try:
        _attach_copy_of_previous(connection, serving, partial)
        for schema in PUBLISHED_SCHEMAS:
            connection.execute(f"create schema if not exists serving.{schema}")
        previous = set(_tables(connection, "serving"))
        for schema, name in relations:
            relation = f"{schema}.{name}"
            changed = None
            if relation in keys_by_table and (schema, name) in previous:
                changed = _copy_rows_built_since(connection, schema, name, keys_by_table[relation])
            if changed is None:
                connection.execute(
                    f'create or replace table serving.{schema}."{name}" as select * from {schema}."{name}"'
                )
            tables[relation] = scalar(connection, f'select count(*) from serving.{schema}."{name}"')
            copied[relation] = tables[relation] if changed is None else changed
        for item in segments:
            relation = item.segment.relation
            tables[relation] = copied[relation] = _write_segment(connection, item)
        published = set(relations) | {(SEGMENT_SCHEMA, item.segment.name) for item in segments}
        for schema, name in previous - published - {("marts", "publication")}:
            connection.execute(f'drop table serving.{schema}."{name}"')  # no longer in the warehouse
        connection.execute(
            """
            create or replace table serving.marts.publication as
            select $at::timestamp as published_at, $run as run_id,
                (select max(as_of) from marts.observation_window) as as_of, version() as duckdb_version
            """,
            {"at": published_at, "run": run_id},
        )
        _comment(connection, {**(descriptions or {}), "marts.publication": PUBLICATION_DESCRIPTIONS})
        connection.execute("detach serving")
    except BaseException:
        if "serving" in {
            row[0] for row in connection.execute("select database_name from duckdb_databases()").fetchall()
        }:
            connection.execute("detach serving")
        for leftover in (partial, partial.with_name(partial.name + ".wal")):
            leftover.unlink(missing_ok=True)
        raise
    return StagedPublication(partial, serving, tables, copied)


def _comment(connection: duckdb.DuckDBPyConnection, descriptions: Descriptions) -> None:
    """COMMENT ON every published table and column that has a description."""
    columns = connection.execute(
        "select schema_name, table_name, column_name from duckdb_columns() where database_name = 'serving'"
    ).fetchall()
    commented_tables = set()
    for schema, table, column in columns:
        described = descriptions.get(f"{schema}.{table}", {})
        target = f'serving.{schema}."{table}"'
        if (schema, table) not in commented_tables and described.get(""):
            connection.execute(f"comment on table {target} is {sql_literal(described[''])}")
            commented_tables.add((schema, table))
        if described.get(column):
            connection.execute(f'comment on column {target}."{column}" is {sql_literal(described[column])}')


def _write_segment(connection: duckdb.DuckDBPyConnection, item: PreparedSegment) -> int:
    """serving.segments.<name> := the segment's exported rows (money as DECIMAL(18, 2)); returns the rows."""
    columns = ", ".join(
        f'"{column}"::decimal(18, 2) as "{column}"' if column in item.money_columns else f'"{column}"'
        for column in item.rows.columns
    )
    connection.register("_segment_rows", item.rows)
    try:
        connection.execute(
            f'create or replace table serving.{SEGMENT_SCHEMA}."{item.segment.name}" as '
            f"select {columns} from _segment_rows"
        )
    finally:
        connection.unregister("_segment_rows")
    return len(item.rows)


def _attach_copy_of_previous(connection: duckdb.DuckDBPyConnection, serving: Path, partial: Path) -> None:
    """Attach `partial` as catalog serving: a copy of the previous serving file, or a new file when there is
    none or it cannot be opened (then every table is copied whole)."""
    if serving.exists():
        shutil.copyfile(serving, partial)
        try:
            _attach(connection, partial)
            return
        except duckdb.Error:
            partial.unlink()
    _attach(connection, partial)


def _attach(
    connection: duckdb.DuckDBPyConnection, path: Path, name: str = "serving", read_only: bool = False
) -> None:
    """ATTACH `path` as catalog `name`."""
    quoted = str(path).replace("'", "''")  # ATTACH takes no parameters; the path is ours
    connection.execute(f"attach '{quoted}' as {name}" + (" (read_only)" if read_only else ""))


@contextmanager
def attached(
    connection: duckdb.DuckDBPyConnection, path: Path, name: str, read_only: bool = False
) -> Iterator[None]:
    """`path` attached as catalog `name` for the block."""
    _attach(connection, path, name, read_only)
    try:
        yield
    finally:
        connection.execute(f"detach {name}")


def _tables(connection: duckdb.DuckDBPyConnection, catalog: str) -> list[tuple[str, str]]:
    return connection.execute(
        "select schema_name, table_name from duckdb_tables() where database_name = $catalog",
        {"catalog": catalog},
    ).fetchall()


def _copy_rows_built_since(
    connection: duckdb.DuckDBPyConnection, schema: str, name: str, key: Sequence[str]
) -> int | None:
    """Bring serving's copy of a table built by parts up to date: the rows the warehouse wrote after the copy's
    newest ROW_VERSION replace the copy's rows of the same keys. Returns how many rows were copied, or None
    when the table is better (or must be) copied whole: other columns, no stamped rows yet, half the rows or
    more changed, or a row count that then differs from the warehouse's."""
    source, target = f'{schema}."{name}"', f'serving.{schema}."{name}"'
    if _columns(connection, source) != _columns(connection, target):
        return None
    since = scalar(connection, f"select max({ROW_VERSION}) from {target}")
    if since is None:
        return None
    total, changed = one_row(
        connection,
        f"select count(*), count(*) filter (where {ROW_VERSION} > $since) from {source}",
        {"since": since},
    )
    if 2 * changed >= total:
        return None
    connection.execute(
        f"create or replace temp table _built_since as select * from {source} where {ROW_VERSION} > $since",
        {"since": since},
    )
    try:
        keys = ", ".join(f'"{column}"' for column in key)
        matched = " and ".join(f'published."{column}" = changed."{column}"' for column in key)
        connection.execute(
            f"delete from {target} as published using (select distinct {keys} from _built_since) as changed "
            f"where {matched}"
        )
        connection.execute(f"insert into {target} select * from _built_since")
    finally:
        connection.execute("drop table _built_since")
    if scalar(connection, f"select count(*) from {target}") != total:
        return None
    return changed


def _columns(connection: duckdb.DuckDBPyConnection, relation: str) -> list[tuple[str, str]]:
    return [row[:2] for row in connection.execute(f"describe {relation}").fetchall()]
