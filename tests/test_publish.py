"""Publishing the serving file: a reader holding the old file keeps a consistent snapshot and does not block
the publish; a failed publish leaves the previous file; nothing half-written is left behind."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from dagster_project.lib.exports import PreparedSegment, Segment, prepare
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


def champions(warehouse: duckdb.DuckDBPyConnection) -> PreparedSegment:
    """The segment as its export prepares it (no consents: nobody removed)."""
    warehouse.execute(
        "create table if not exists marts.customer_consents (customer_id int, channel varchar, status varchar)"
    )
    segment = Segment("champions", "", "email", "crm", ("customer_id",), "service")
    return prepare(warehouse, segment)


def rows(path: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as reader:
        return reader.execute(sql).fetchall()


def test_a_reader_of_the_old_file_keeps_its_snapshot_while_a_new_one_is_published(warehouse, tmp_path):
    serving = tmp_path / "serving" / "serving.duckdb"
    first = publish(warehouse, serving, datetime(2026, 1, 1, 6), "run-1", None, [champions(warehouse)])
    assert first.tables == {
        "marts.customer_360": 2,
        "marts.customer_consents": 0,
        "marts.observation_window": 1,
        "segments.champions": 1,
    }
    reader = duckdb.connect(str(serving), read_only=True, config={"enable_external_access": False})
    assert reader.execute("select count(*) from marts.customer_360").fetchone() == (2,)

    warehouse.execute("insert into marts.customer_360 values (3, 'Caio')")
    # Not blocked by the open reader; no prepared segments: no segment table (never the warehouse's view).
    publish(warehouse, serving, datetime(2026, 1, 2, 6), "run-2")

    assert reader.execute("select count(*) from marts.customer_360").fetchone() == (2,)  # its snapshot
    reader.close()
    assert rows(serving, "select count(*) from marts.customer_360") == [(3,)]
    assert rows(serving, "select count(*) from duckdb_tables() where schema_name = 'segments'") == [(0,)]
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


ORDERS_KEY = {"marts.fct_orders": ("source_system", "order_id")}


def build_orders(warehouse: duckdb.DuckDBPyConnection, built_at: str, orders: list[tuple]) -> None:
    """What dbt's delete+insert does: the orders' rows replace those of the same key, stamped `built_at`."""
    warehouse.execute(
        "create table if not exists marts.fct_orders "
        "(source_system varchar, order_id varchar, amount decimal(18, 4), built_at timestamp)"
    )
    for source_system, order_id, amount in orders:
        warehouse.execute(
            "delete from marts.fct_orders where source_system = $1 and order_id = $2",
            [source_system, order_id],
        )
        warehouse.execute(
            "insert into marts.fct_orders by name "
            "select $1 as source_system, $2 as order_id, $3 as amount, $4::timestamp as built_at",
            [source_system, order_id, amount, built_at],
        )


def same_rows(warehouse: duckdb.DuckDBPyConnection, serving: Path, table: str) -> bool:
    warehouse.execute(f"attach '{serving}' as published (read_only)")
    try:
        return warehouse.execute(
            f"select count(*) from ((from {table} except all from published.{table}) "
            f"union all (from published.{table} except all from {table}))"
        ).fetchone() == (0,)
    finally:
        warehouse.execute("detach published")


def test_a_table_built_by_parts_gets_only_the_rows_written_since_the_previous_file(warehouse, tmp_path):
    serving = tmp_path / "serving.duckdb"
    build_orders(warehouse, "2026-01-01 05:00", [("shop", f"P{number}", number) for number in range(1, 11)])
    first = publish(warehouse, serving, datetime(2026, 1, 1, 6), "run-1", ORDERS_KEY)
    assert first.copied["marts.fct_orders"] == 10
    reader = duckdb.connect(str(serving), read_only=True)

    # The next build corrects P2's amount, adds P11; P5 has the same number in another system.
    build_orders(warehouse, "2026-01-02 05:00", [("shop", "P2", 20), ("shop", "P11", 11), ("app", "P5", 50)])
    warehouse.execute("insert into marts.customer_360 values (3, 'Caio')")
    second = publish(warehouse, serving, datetime(2026, 1, 2, 6), "run-2", ORDERS_KEY)

    assert second.copied == {
        "marts.customer_360": 3,  # tables not built by parts are copied whole
        "marts.fct_orders": 3,
        "marts.observation_window": 1,
    }
    assert second.tables["marts.fct_orders"] == 12
    assert same_rows(warehouse, serving, "marts.fct_orders")
    assert same_rows(warehouse, serving, "marts.customer_360")
    assert reader.execute("select sum(amount) from marts.fct_orders").fetchone() == (55,)  # its snapshot
    reader.close()
    assert rows(serving, "select amount from marts.fct_orders where order_id = 'P2'") == [(20,)]
    assert rows(serving, "select run_id from marts.publication") == [("run-2",)]


def test_a_table_built_by_parts_is_copied_whole_when_its_rows_cannot_be_matched(warehouse, tmp_path):
    serving = tmp_path / "serving.duckdb"
    build_orders(warehouse, "2026-01-01 05:00", [("shop", f"P{number}", number) for number in range(1, 11)])
    publish(warehouse, serving, datetime(2026, 1, 1, 6), "run-1", ORDERS_KEY)

    def orders_copied_on(day: int) -> int:
        publication = publish(warehouse, serving, datetime(2026, 1, day, 6), f"run-{day}", ORDERS_KEY)
        assert same_rows(warehouse, serving, "marts.fct_orders")
        return publication.copied["marts.fct_orders"]

    # A row gone without a new stamp (as after a rebuild that kept old stamps): counts differ, copied whole.
    warehouse.execute("delete from marts.fct_orders where order_id = 'P1'")
    build_orders(warehouse, "2026-01-02 05:00", [("shop", "P11", 11)])
    assert orders_copied_on(2) == 10
    # A new column: copied whole.
    warehouse.execute("alter table marts.fct_orders add column channel varchar")
    build_orders(warehouse, "2026-01-03 05:00", [("shop", "P12", 12)])
    assert orders_copied_on(3) == 11
    # The next day, by parts again.
    build_orders(warehouse, "2026-01-04 05:00", [("shop", "P13", 13)])
    assert orders_copied_on(4) == 1

    # A table gone from the warehouse is gone from the next file.
    warehouse.execute("drop table marts.fct_orders")
    publish(warehouse, serving, datetime(2026, 1, 5, 6), "run-5", ORDERS_KEY)
    assert rows(serving, "select count(*) from duckdb_tables() where table_name = 'fct_orders'") == [(0,)]


def test_a_previous_file_that_cannot_be_opened_is_replaced_by_a_whole_copy(warehouse, tmp_path):
    serving = tmp_path / "serving.duckdb"
    serving.write_bytes(b"not a DuckDB file")
    build_orders(warehouse, "2026-01-01 05:00", [("shop", "P1", 1)])
    publication = publish(warehouse, serving, datetime(2026, 1, 1, 6), "run-1", ORDERS_KEY)
    assert publication.copied["marts.fct_orders"] == publication.tables["marts.fct_orders"] == 1
    assert same_rows(warehouse, serving, "marts.fct_orders")
    assert sorted(path.name for path in tmp_path.iterdir() if "serving" in path.name) == ["serving.duckdb"]


def test_the_facts_and_the_histories_are_the_tables_built_by_parts():
    from dagster_project.defs.exports import TABLES_BUILT_BY_PARTS  # read from dbt's manifest

    assert TABLES_BUILT_BY_PARTS == {
        "marts.fct_purchases": ("source_system", "order_id"),
        "marts.fct_service_interactions": ("source_system", "protocol"),
        "marts.fct_campaign_contacts": ("source_system", "campaign_id", "source_customer_id", "contacted_at"),
        "marts.customer_rfmt_history": ("as_of",),
        "marts.customer_value_history": ("as_of",),
    }


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


def test_the_second_publish_holds_what_the_warehouse_holds_and_copies_only_the_new_snapshot(second_run):
    """The second file starts as a copy of the first: every table must still equal the warehouse's."""
    folder, result, _ = second_run
    [published] = [
        event.materialization.metadata
        for event in result.get_asset_materialization_events()
        if event.asset_key == dg.AssetKey(["publish", "serving"])
    ]
    with duckdb.connect(str(folder / "warehouse.duckdb"), read_only=True) as warehouse:
        tables = [
            f"{schema}.{name}"
            for schema, name in warehouse.execute(
                "select table_schema, table_name from information_schema.tables where table_schema = 'marts'"
            ).fetchall()
        ]
        different = [table for table in tables if not same_rows(warehouse, folder / "serving.duckdb", table)]
        # Segment tables hold the exported rows (tests/test_exports.py), not the warehouse's views.
        new_snapshot = warehouse.execute(
            "select count(*) from marts.customer_rfmt_history where as_of = date '2025-06-30'"
        ).fetchone()[0]
    assert len(tables) > 15
    assert different == []
    # as_of changed, so the facts were rebuilt and copied whole; the history gained one snapshot.
    copied = published["rows_copied"].value
    assert copied["marts.customer_rfmt_history"] == new_snapshot > 0
    assert copied["marts.fct_purchases"] == published["tables"].value["marts.fct_purchases"]


def test_every_published_table_and_column_carries_its_description(built_sample):
    """BI tools (DBeaver, Metabase, ...) show DuckDB's comments: every table and column of the serving file has
    one, from dbt's YAML."""
    folder, _ = built_sample
    with duckdb.connect(str(folder / "serving.duckdb"), read_only=True) as reader:
        columns = reader.execute(
            "select schema_name || '.' || table_name || '.' || column_name, comment from duckdb_columns() "
            "where schema_name in ('marts', 'segments')"
        ).fetchall()
        tables = reader.execute(
            "select schema_name || '.' || table_name, comment from duckdb_tables() "
            "where schema_name in ('marts', 'segments')"
        ).fetchall()
        example = reader.execute(
            "select comment from duckdb_columns() where table_name = 'customer_360' and column_name = 'open_complaints'"
        ).fetchone()[0]
    assert len(columns) > 250 and [name for name, comment in columns if not comment] == []
    assert len(tables) > 20 and [name for name, comment in tables if not comment] == []
    assert example.startswith("Complaints not resolved")
