"""Publishing the serving file: a reader holding the old file keeps a consistent snapshot and does not block
the publish; a failed publish leaves the previous file; nothing half-written is left behind."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from dagster_project.lib.publish import publish


@pytest.fixture
def warehouse(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    connection.execute("create schema marts; create schema segments; create schema intermediate")
    connection.execute(
        "create table marts.customer_360 as select * from (values (1, 'Ana'), (2, 'Bia')) t(customer_id, name)"
    )
    connection.execute("create table marts.observation_window as select date '2025-12-30' as as_of")
    connection.execute("create table intermediate.private as select 1 as x")
    connection.execute(
        "create view segments.champions as select customer_id from marts.customer_360 where customer_id = 1"
    )
    return connection


def rows(path: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as reader:
        return reader.execute(sql).fetchall()


def test_a_reader_of_the_old_file_keeps_its_snapshot_while_a_new_one_is_published(warehouse, tmp_path):
    serving = tmp_path / "serving" / "serving.duckdb"
    first = publish(warehouse, serving, datetime(2026, 1, 1, 6), "run-1")
    assert first.tables == {"marts.customer_360": 2, "marts.observation_window": 1, "segments.champions": 1}
    reader = duckdb.connect(str(serving), read_only=True, config={"enable_external_access": False})
    assert reader.execute("select count(*) from marts.customer_360").fetchone() == (2,)

    warehouse.execute("insert into marts.customer_360 values (3, 'Caio')")
    publish(warehouse, serving, datetime(2026, 1, 2, 6), "run-2")  # not blocked by the open reader

    assert reader.execute("select count(*) from marts.customer_360").fetchone() == (2,)  # its snapshot
    reader.close()
    assert rows(serving, "select count(*) from marts.customer_360") == [(3,)]
    assert rows(serving, "select count(*) from segments.champions") == [(1,)]  # views become tables
    published_at, run_id, as_of, version = rows(serving, "select * from marts.publication")[0]
    assert (published_at, run_id, str(as_of)) == (datetime(2026, 1, 2, 6), "run-2", "2025-12-30")
    assert version.startswith("v1.4")
    assert rows(
        serving, "select count(*) from information_schema.schemata where schema_name = 'intermediate'"
    ) == [(0,)]
    assert sorted(path.name for path in serving.parent.iterdir()) == ["serving.duckdb"]


def test_a_failed_publish_leaves_the_previous_file(warehouse, tmp_path):
    serving = tmp_path / "serving.duckdb"
    publish(warehouse, serving, datetime(2026, 1, 1, 6), "run-1")
    before = serving.read_bytes()
    warehouse.execute("create table marts.scratch as select 1 as x")
    warehouse.execute("create view marts.broken as select * from marts.scratch")
    warehouse.execute("drop table marts.scratch")  # the view now fails when read
    with pytest.raises(duckdb.Error):
        publish(warehouse, serving, datetime(2026, 1, 2, 6), "run-2")
    assert serving.read_bytes() == before
    assert sorted(path.name for path in tmp_path.iterdir() if "serving" in path.name) == ["serving.duckdb"]
    assert rows(serving, "select run_id from marts.publication") == [("run-1",)]


def test_a_clean_run_publishes_the_gated_marts_for_bi(built_sample):
    folder, result = built_sample
    serving = folder / "serving.duckdb"
    with duckdb.connect(str(serving), read_only=True, config={"enable_external_access": False}) as reader:
        customers = reader.execute("select count(*) from marts.customer_360").fetchone()[0]
        run_id = reader.execute("select run_id from marts.publication").fetchone()[0]
        schemas = {
            row[0]
            for row in reader.execute(
                "select distinct table_schema from information_schema.tables"
            ).fetchall()
        }
    with duckdb.connect(str(folder / "warehouse.duckdb"), read_only=True) as warehouse:
        expected = warehouse.execute("select count(*) from marts.customer_360").fetchone()[0]
    assert customers == expected > 1000
    assert run_id == result.run_id
    assert schemas == {"marts", "segments"}


def test_a_bi_client_holding_the_serving_file_neither_blocks_a_run_nor_sees_it_half_done(second_run):
    """The must-show: a DuckDB 1.4 client holds the published file open through a run with one new extract."""
    folder, result, client = second_run
    assert client["version"].startswith("1.4")  # the DuckDB 1.4 LTS that BI drivers embed
    old_run, before = client["opened"]
    assert before > 1000
    assert result.success
    assert client["held"] == [old_run, before]  # the open connection keeps its consistent snapshot
    published = (result.run_id, before + 1)
    assert client["fresh"] and {tuple(state) for state in client["fresh"]} <= {(old_run, before), published}
    with duckdb.connect(
        str(folder / "serving.duckdb"), read_only=True, config={"enable_external_access": False}
    ) as reader:
        assert (
            reader.execute(
                "select (select run_id from marts.publication), (select count(*) from marts.customer_360)"
            ).fetchone()
            == published
        )
        new_customer = reader.execute(
            "select full_name, city, source_systems from marts.customer_360 where email = 'zuleica.nova@example.com.br'"
        ).fetchall()
    assert new_customer == [("Zuleica Teste Nova", "Campinas", ["ecommerce"])]
