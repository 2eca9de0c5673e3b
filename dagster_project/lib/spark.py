"""Apache Spark as the engine of the dbt steps (C360_ENGINE=spark; docs/spark.md).

The warehouse file stays where everything else happens: ingest loads and gates the extracts into it, the Python
steps (identity, CLV, the offer model), the gates, the exports and the serving file read and write it. On
Spark, each dbt step runs between two copies:
  - before it, `push` copies the tables its models read from the warehouse file into Spark's catalog (the raw
    families, the erasure's tombstones, what the Python steps wrote: every dbt source), as Parquet tables;
  - dbt builds the models on Spark (dbt-spark, session method, over Spark Connect), incrementally where the
    models are, in Spark's own tables, which persist between runs;
  - after it, `pull` copies what the step built back into the warehouse file, so the rest of the run reads the
    same tables as on DuckDB.
The run starts its own Spark Connect server (C360_SPARK_MASTER, tables and a Derby catalog in C360_SPARK_DIR),
once per process, or connects to a cluster's (C360_SPARK_REMOTE). dbt's processes connect to the same server.
"""

from __future__ import annotations

import atexit
import re
import secrets
import shutil
import socket
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from dagster_project.lib.settings import Settings
from dagster_project.lib.warehouse import has_table, has_view, transaction

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# The SQL semantics the models are written for, set on every session (dbt's too: dbt/profiles.yml): times
# without zone, as DuckDB's TIMESTAMP; string literals as written, so regular expressions read alike.
SESSION_CONF = {
    "spark.sql.session.timeZone": "UTC",
    "spark.sql.timestampType": "TIMESTAMP_NTZ",
    "spark.sql.parser.escapedStringLiterals": "true",
}
LAKE = "lake"  # under the Spark folder: the Parquet copies of the warehouse's tables
TABLES = "tables"  # under the Spark folder: Spark's own tables (spark.sql.warehouse.dir)
ERASURE_SALT = re.compile(r"'([0-9a-f]{64})'")


def driver_memory(size: str) -> str:
    """A size of the settings (4GB, 1536MiB) as Spark writes it (4g, 1536m)."""
    match = re.fullmatch(r"(\d+(?:\.\d+)?)\s*([KMGT])i?B", size.strip(), flags=re.IGNORECASE)
    if match is None:
        raise ValueError(f"not a size: {size!r}")
    return f"{int(float(match.group(1)))}{match.group(2).lower()}"


@dataclass
class Engine:
    """The run's Spark: a session for this process, and the address (and token) of the Spark Connect server
    dbt's processes connect to."""

    session: SparkSession
    remote: str
    token: str | None

    def environment(self) -> dict[str, str]:
        """What dbt's process needs to reach the same server (dbt-spark's session method reads it)."""
        variables = {"SPARK_REMOTE": self.remote}
        if self.token:
            variables["SPARK_CONNECT_AUTHENTICATE_TOKEN"] = self.token
        return variables


_engines: dict[tuple[str | None, str, Path], Engine] = {}


def engine(settings: Settings) -> Engine:
    """The Spark of this process for these settings: started (or connected) on first use, kept for the rest of
    the run, stopped when the process ends."""
    key = (settings.spark_remote, settings.spark_master, settings.spark_home)
    if key not in _engines:
        _engines[key] = _connect(settings.spark_remote) if settings.spark_remote else _start(settings)
    return _engines[key]


def _pyspark() -> Any:
    # Imported on first use (the DuckDB engine never loads it); its warning about pandas 3 is filtered in
    # dagster_project/__init__.py.
    import pyspark.sql

    return pyspark.sql


def _connect(remote: str) -> Engine:
    spark = _pyspark()
    builder = spark.SparkSession.builder.remote(remote)
    for key, value in SESSION_CONF.items():
        builder = builder.config(key, value)
    return Engine(session=builder.getOrCreate(), remote=remote, token=None)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _start(settings: Settings) -> Engine:
    """A Spark Connect server in this process (a local driver on C360_SPARK_MASTER), on a free port of the
    loopback interface, with a token of its own; its tables and catalog under C360_SPARK_DIR."""
    home = settings.spark_home
    home.mkdir(parents=True, exist_ok=True)
    log_config = home / "log4j2.properties"
    log_config.write_text(
        "rootLogger.level = warn\nrootLogger.appenderRef.file.ref = file\n"
        "appender.file.type = File\nappender.file.name = file\n"
        f"appender.file.fileName = {home / 'spark.log'}\n"
        "appender.file.layout.type = PatternLayout\n"
        "appender.file.layout.pattern = %d{ISO8601} %p %c{1}: %m%n\n",
        encoding="utf-8",
    )
    port, token = _free_port(), secrets.token_hex(24)
    spark = _pyspark()
    builder = (
        spark.SparkSession.builder.master(settings.spark_master)
        .appName("customer360")
        .config("spark.driver.memory", driver_memory(settings.spark_driver_memory))
        .config(
            "spark.driver.extraJavaOptions",
            f"-Dderby.system.home={home} -Dlog4j2.configurationFile=file:{log_config}",
        )
        .config("spark.sql.warehouse.dir", str(home / TABLES))
        .config("spark.sql.catalogImplementation", "hive")
        .config(
            "spark.hadoop.javax.jdo.option.ConnectionURL",
            f"jdbc:derby:;databaseName={home / 'metastore_db'};create=true",
        )
        .config("spark.plugins", "org.apache.spark.sql.connect.SparkConnectPlugin")
        .config("spark.connect.grpc.binding.address", "127.0.0.1")
        .config("spark.connect.grpc.binding.port", str(port))
        .config("spark.connect.authenticate.token", token)
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
    )
    for key, value in {**SESSION_CONF, **settings.spark_configuration}.items():
        builder = builder.config(key, value)
    session = builder.getOrCreate()
    atexit.register(session.stop)
    # "localhost": the Connect client sends a token over plain gRPC only to a host of that name.
    return Engine(session=session, remote=f"sc://localhost:{port}", token=token)


def push(
    connection: duckdb.DuckDBPyConnection, engine: Engine, home: Path, tables: Iterable[str]
) -> list[str]:
    """Copy the warehouse's `tables` (schema.name; those it lacks are skipped) into Spark's catalog as Parquet
    tables of the same names, each replacing the last copy; the erasure's salted hash comes along as a Spark
    function. Returns the tables copied."""
    copied = []
    for qualified in tables:
        schema, name = qualified.split(".")
        if not has_table(connection, schema, name):
            continue
        folder = home / LAKE / schema / name
        version = folder / f"v{time.time_ns()}"
        version.mkdir(parents=True)
        connection.execute(f"copy {schema}.{name} to '{version / 'part-0.parquet'}' (format parquet)")
        engine.session.sql(f"create database if not exists {schema}")
        engine.session.sql(f"drop table if exists {schema}.{name}")
        engine.session.sql(f"create table {schema}.{name} using parquet location '{version}'")
        for old in folder.iterdir():
            if old != version:
                shutil.rmtree(old)
        copied.append(qualified)
    _create_erasure_hash(connection, engine)
    return copied


def _create_erasure_hash(connection: duckdb.DuckDBPyConnection, engine: Engine) -> None:
    """raw.erasure_hash(kind, value) on Spark with the warehouse's salt (lib/erasure.py), for staging's
    anti-join of the tombstones: the same hashes as DuckDB's macro."""
    row = connection.execute(
        "select macro_definition from duckdb_functions() "
        "where schema_name = 'raw' and function_name = 'erasure_hash' and database_name = current_database()"
    ).fetchone()
    salt = ERASURE_SALT.search(row[0]) if row else None
    if salt is None:
        return
    engine.session.sql("create database if not exists raw")
    engine.session.sql(
        "create or replace function raw.erasure_hash(kind string, value string) returns string "
        f"return sha2('{salt.group(1)}' || '|' || kind || '|' || value, 256)"
    )


def missing(engine: Engine, relations: Sequence[str]) -> list[str]:
    """The relations (schema.name) Spark's catalog does not hold."""
    return [relation for relation in relations if not engine.session.catalog.tableExists(relation)]


def present(engine: Engine, relations: Sequence[str]) -> list[str]:
    """The relations (schema.name) Spark's catalog holds."""
    return [relation for relation in relations if engine.session.catalog.tableExists(relation)]


def pull(connection: duckdb.DuckDBPyConnection, engine: Engine, relations: Iterable[str]) -> None:
    """Copy Spark's `relations` (schema.name) into the warehouse as tables of the same names, in one
    transaction: from their Parquet files where Spark keeps them on this machine, else through Arrow."""
    with transaction(connection):
        for qualified in relations:
            schema, name = qualified.split(".")
            connection.execute(f"create schema if not exists {schema}")
            if has_view(connection, schema, name):  # a view on DuckDB (the segments): a table from now on
                connection.execute(f"drop view {schema}.{name}")
            files = _local_files(engine, qualified)
            if files:
                source = f"read_parquet({[str(path) for path in files]})"
            else:  # another session (dbt's) rewrote it: its cached file listing may be stale
                engine.session.catalog.refreshTable(qualified)
                connection.register("pulled", engine.session.table(qualified).toArrow())
                source = "pulled"
            connection.execute(f"create or replace table {schema}.{name} as select * from {source}")
            if not files:
                connection.unregister("pulled")


def _local_files(engine: Engine, qualified: str) -> list[Path]:
    """The Parquet files of a Spark table stored on this machine (none for a view, or another file system)."""
    details = engine.session.sql(f"describe table extended {qualified}").collect()
    location = next((row[1] for row in details if row[0] == "Location"), None)
    if not location or not str(location).startswith("file:"):
        return []
    folder = Path(str(location).removeprefix("file:"))
    return sorted(folder.glob("*.parquet")) if folder.is_dir() else []


def forget(settings: Settings, relations: Iterable[str]) -> str:
    """Forget what Spark holds of the warehouse (after an erasure: its tables hold the erased people's rows,
    and would be pulled back). The next Spark build copies its tables in again and rebuilds from scratch, the
    never-rebuilt ones restored from the warehouse file. The run's own server: its folder (tables, catalog)
    deleted. A cluster's (C360_SPARK_REMOTE): the project's tables there dropped - `relations` (schema.name:
    the models, seeds and sources) and the working tables named after them (`<name>__...`); no other table of
    the cluster is touched - and the Parquet copies pushed to it deleted. Returns what was done, for the log."""
    if not settings.spark_remote:
        started = _engines.pop((settings.spark_remote, settings.spark_master, settings.spark_home), None)
        if started is not None:
            started.session.stop()
        shutil.rmtree(settings.spark_home, ignore_errors=True)
        return f"{settings.spark_home} deleted"
    dropped = drop_tables(engine(settings), relations)
    shutil.rmtree(settings.spark_home / LAKE, ignore_errors=True)  # the copies pushed from the warehouse
    return f"{len(dropped)} table(s) of this project dropped on the cluster (C360_SPARK_REMOTE)"


def drop_tables(engine: Engine, relations: Iterable[str]) -> list[str]:
    """Drop `relations` (schema.name) and the tables named after them (`<name>__...`: the incremental
    strategies' and the connected components' working tables) from Spark's catalog; returns those dropped."""
    owned: dict[str, set[str]] = {}
    for relation in relations:
        schema, _, name = relation.partition(".")
        owned.setdefault(schema, set()).add(name.lower())
    catalog, dropped = engine.session.catalog, []
    for schema, names in sorted(owned.items()):
        if not catalog.databaseExists(schema):
            continue
        for table in catalog.listTables(schema):
            if table.isTemporary or not (
                table.name in names or any(table.name.startswith(f"{name}__") for name in names)
            ):
                continue
            kind = "view" if table.tableType == "VIEW" else "table"
            engine.session.sql(f"drop {kind} if exists {schema}.{table.name}")
            dropped.append(f"{schema}.{table.name}")
    return dropped
