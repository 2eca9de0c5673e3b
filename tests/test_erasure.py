"""The right to erasure (lib/erasure.py, docs/privacy.md): a request naming only a person's e-mail removes every
row of theirs - in every source system, through the identity graph - from every schema of the warehouse, the
serving file and the export folders; their original customer file delivered again brings nothing back; everyone
else's rows are untouched; the request log and the report say what was removed, without a personal value."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import datetime
from pathlib import Path

import dagster as dg
import duckdb

from dagster_project.defs.transform import dbt_identity_inputs
from tests.conftest import copy_of, run_pipeline

# Per-customer marts whose columns describe the customer against everyone (RFM quintiles, the fitted CLV and
# offer models, tiers by share of value): one customer fewer may move them. Every other mart with a customer_id
# holds each customer's own facts and must not change for anyone else.
POPULATION_RELATIVE = {
    "customer_360",
    "customer_clv",
    "customer_next_best_offer",
    "customer_offers",
    "customer_rfmt",
    "customer_rfmt_history",
    "customer_value",
    "customer_value_history",
    "service_desk_offers",
}


def the_person(connection: duckdb.DuckDBPyConnection, among: list[int] | None = None) -> tuple[int, str]:
    """A customer with records in three source systems, purchases, service contacts, campaign contacts and
    consents, whose e-mail and name no one else has (and among `among`, if given); returns their id and e-mail."""
    return connection.execute(
        """
        with records as (
            select ids.customer_id, lower(trim(rows.email)) as email, rows.full_name
            from marts.customer_id_map as ids
            join raw.customers as rows
                on rows._source_system = ids.source_system and trim(rows.source_customer_id) = ids.source_customer_id
        ),
        unique_emails as (
            select email, any_value(customer_id) as customer_id from records
            where email like '%@%' group by email having count(distinct customer_id) = 1
        ),
        unique_names as (
            select full_name from records group by full_name having count(distinct customer_id) = 1
        )
        select ids.customer_id, any_value(unique_emails.email)
        from marts.customer_id_map as ids
        join unique_emails using (customer_id)
        where ids.customer_id in (select customer_id from marts.fct_purchases)
            and ids.customer_id in (select customer_id from marts.fct_service_interactions)
            and ids.customer_id in (select customer_id from marts.fct_campaign_contacts)
            and ids.customer_id in (select customer_id from marts.customer_consents)
            and ($among::bigint[] is null or list_contains($among::bigint[], ids.customer_id))
            and not exists (
                select 1 from records where records.customer_id = ids.customer_id
                    and records.full_name not in (select full_name from unique_names)
            )
        group by ids.customer_id
        having count(distinct ids.source_system) >= 3
        order by ids.customer_id
        limit 1
        """,
        {"among": among},
    ).fetchone()


def their_values(connection: duckdb.DuckDBPyConnection, customer_id: int) -> dict[str, set[str]]:
    """Every id, name, e-mail, phone and document of theirs, as delivered and as staging keyed them."""
    rows = connection.execute(
        """
        select ids.source_system, ids.source_customer_id, rows.full_name, rows.email, rows.phone, rows.document_id,
            staged.email_key, staged.phone_key, staged.document_key
        from marts.customer_id_map as ids
        left join raw.customers as rows
            on rows._source_system = ids.source_system and trim(rows.source_customer_id) = ids.source_customer_id
        left join staging.stg_raw__customers as staged
            on staged.source_system = ids.source_system and staged.source_customer_id = ids.source_customer_id
        where ids.customer_id = $id
        """,
        {"id": customer_id},
    ).fetchall()
    values: dict[str, set[str]] = {"ids": set(), "texts": set()}
    for system, source_id, *personal in rows:
        values["ids"] |= {source_id, f"{system}:{source_id}"}
        values["texts"] |= {value.strip().lower() for value in personal if value and len(value.strip()) >= 6}
    return values


def traces(
    database: Path, customer_id: int, values: dict[str, set[str]], but: tuple[str, ...] = ()
) -> list[str]:
    """Every column of every table (of the schemas not in `but`) holding one of the values (an id equal, a text
    within it) or the customer id."""
    found = []
    with duckdb.connect(str(database), read_only=True) as connection:
        columns = connection.execute(
            """
            select schema_name, table_name, column_name, data_type from duckdb_columns()
            where database_name = current_database()
                and (schema_name, table_name) in (select schema_name, table_name from duckdb_tables())
            """
        ).fetchall()
        for schema, table, column, data_type in columns:
            if schema in but:
                continue
            relation, quoted = f'"{schema}"."{table}"', f'"{column}"'
            if column.endswith("customer_id") and data_type in ("BIGINT", "INTEGER"):
                query = f"select count(*) from {relation} where {quoted} = $id"
                parameters: dict[str, object] = {"id": customer_id}
            elif column.endswith("customer_ids") and data_type.endswith("[]"):
                query = f"select count(*) from {relation} where list_contains({quoted}, $id)"
                parameters = {"id": customer_id}
            elif data_type in ("VARCHAR", "JSON") or data_type.endswith("[]"):
                text = f"lower({quoted}::varchar)"
                query = (
                    f"select count(*) from {relation} where {text} in (select lower(unnest($ids::varchar[]))) "
                    f"or list_bool_or([contains({text}, needle) for needle in $texts::varchar[]])"
                )
                parameters = {"ids": sorted(values["ids"]), "texts": sorted(values["texts"])}
            else:
                continue
            if connection.execute(query, parameters).fetchone()[0]:
                found.append(f"{database.name} {schema}.{table}.{column}")
    return found


def customer_marts(database: Path) -> list[str]:
    with duckdb.connect(str(database), read_only=True) as connection:
        return [
            name
            for (name,) in connection.execute(
                "select table_name from duckdb_columns() where schema_name = 'marts' and column_name = 'customer_id' "
                "and table_name in (select table_name from duckdb_tables() where schema_name = 'marts') order by 1"
            ).fetchall()
        ]


def rows_of_others(database: Path, customer_id: int, tables: list[str]) -> dict[str, list[tuple]]:
    """Every row of the tables but the customer's (the build's timestamps left out)."""
    with duckdb.connect(str(database), read_only=True) as connection:
        rows = {}
        for table in tables:
            columns = [row[0] for row in connection.execute(f"describe marts.{table}").fetchall()]
            stamps = [column for column in columns if column in ("built_at", "changed_at", "touched_at")]
            exclude = f" exclude ({', '.join(stamps)})" if stamps else ""
            rows[table] = connection.execute(
                f"select *{exclude} from marts.{table} where customer_id is distinct from $id order by all",
                {"id": customer_id},
            ).fetchall()
        return rows


def customers_in(database: Path, tables: list[str]) -> dict[str, set[int]]:
    with duckdb.connect(str(database), read_only=True) as connection:
        return {
            table: {
                row[0]
                for row in connection.execute(f"select distinct customer_id from marts.{table}").fetchall()
            }
            for table in tables
        }


def staged(database: Path) -> dict[str, list[tuple]]:
    with duckdb.connect(str(database), read_only=True) as connection:
        tables = connection.execute(
            "select table_name from duckdb_tables() where schema_name = 'staging' and table_name like 'stg_raw__%'"
        ).fetchall()
        return {
            name: connection.execute(f"select * from staging.{name} order by all").fetchall()
            for (name,) in tables
        }


def exported_rows(export_dir: Path) -> dict[str, list[list[str]]]:
    files = {}
    for manifest in export_dir.glob("*/manifest.json"):
        for entry in json.loads(manifest.read_text(encoding="utf-8"))["segments"]:
            content = (manifest.parent / entry["file"]).read_text(encoding="utf-8-sig")
            files[f"{manifest.parent.name}/{entry['file']}"] = list(
                csv.reader(io.StringIO(content), delimiter=";")
            )
    return files


def test_an_erasure_request_naming_only_an_email_forgets_the_person_everywhere(built_sample, tmp_path):
    folder = copy_of(built_sample[0], tmp_path / "built")
    warehouse, serving, export_dir = (
        folder / "warehouse.duckdb",
        folder / "serving.duckdb",
        folder / "exports",
    )
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        customer_id, email = the_person(connection)
        values = their_values(connection, customer_id)
        highest_id = connection.execute("select max(customer_id) from marts.customer_id_map").fetchone()[0]
    records = sorted(value.split(":", 1) for value in values["ids"] if ":" in value)
    assert len({system for system, _ in records}) >= 3
    assert traces(warehouse, customer_id, values) and traces(
        serving, customer_id, values
    )  # the check finds them
    marts = customer_marts(warehouse)
    before = rows_of_others(warehouse, customer_id, marts)
    customers_before = customers_in(warehouse, marts)
    requests = folder / "raw" / "erasure_requests" / "dpo"
    requests.mkdir(parents=True)
    (requests / "requests_2026-01-05.csv").write_text(
        "request_id,email,requested_at,legal_basis\n"
        f"LGPD-0001,{email.upper()} ,2026-01-05 09:30:00,LGPD Art. 18 VI\n",
        encoding="utf-8",
    )

    result = run_pipeline(folder / "raw", warehouse)

    assert result.success
    assert traces(warehouse, customer_id, values) == []
    assert traces(serving, customer_id, values) == []
    exported = exported_rows(export_dir)
    assert exported and str(customer_id) not in [row[0] for rows in exported.values() for row in rows[1:]]
    cells = [cell.lower() for rows in exported.values() for row in rows for cell in row]
    assert not any(value in cell for value in values["texts"] for cell in cells)
    after = rows_of_others(warehouse, customer_id, marts)
    changed = {table for table in marts if after[table] != before[table]}
    assert changed <= POPULATION_RELATIVE, changed  # everyone else's own facts are as they were
    assert customers_in(warehouse, marts) == {  # and everyone else is still in the others, the person gone
        table: ids - {customer_id} for table, ids in customers_before.items()
    }
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        (log,) = connection.execute(
            "select request_id, status, customers, records, rows_removed, received_at, executed_at "
            "from raw._erasure_log"
        ).fetchall()
        request = connection.execute(
            "select request_id, email, document_id, requested_at, legal_basis from raw.erasure_requests"
        ).fetchall()
        highest_kept = connection.execute(
            "select highest_issued_customer_id from raw._erasure_state"
        ).fetchone()[0]
    assert highest_kept == highest_id  # the ledger's highest id before the erasure: never issued again
    request_id, status, customers, record_count, removed, received_at, executed_at = log
    removed = json.loads(removed)
    assert (request_id, status, customers, record_count) == ("LGPD-0001", "erased", 1, len(records))
    assert executed_at >= received_at
    for table in (
        "raw.customers",
        "raw.purchases",
        "raw.consents",
        "marts.customer_id_map",
        "marts.customer_360",
    ):
        assert removed.get(table, 0) > 0, table
    assert request == [("LGPD-0001", None, None, request[0][3], "LGPD Art. 18 VI")]  # its keys are blanked
    (report,) = (export_dir / "erasure").glob("*.json")
    content = report.read_text(encoding="utf-8")
    assert '"status": "erased"' in content and not any(value in content.lower() for value in values["texts"])
    assert not any(value in content for value in values["ids"] if ":" in value)

    # Their original customer files delivered again - as they were (the same content: not loaded twice), and
    # their own rows in new files - bring nothing back: the rows leave raw as they load. A purchase of theirs
    # written into raw behind the ingest's back (as an older version might have) is left out by staging.
    planted_system, planted_id = next(
        (system, id_) for system, id_ in records if system in ("ecommerce", "loja")
    )
    staged_before = staged(warehouse)
    redelivered = 0
    for original in sorted((folder / "raw" / "customers").glob("*/*")):
        data = original.read_bytes()
        (original.parent / f"again_{original.name}").write_bytes(data)
        ids = [id_ for system, id_ in records if system == original.parent.name != planted_system]
        field = re.compile(
            rb'(^|[,;|\t"])(' + b"|".join(re.escape(i.encode()) for i in ids) + rb')([,;|\t"\r\n])'
        )
        header, *lines = data.splitlines(keepends=True)
        theirs = [line for line in lines if ids and field.search(line)]
        if theirs:
            (original.parent / f"theirs_{original.name}").write_bytes(header + b"".join(theirs))
            redelivered += len(theirs)
    with duckdb.connect(str(warehouse)) as connection:
        connection.execute(
            """
            insert into raw.purchases
            select * replace ($system as _source_system, $id as source_customer_id, 'planted' as order_id,
                now()::timestamp as _loaded_at)
            from raw.purchases where _source_system = $system limit 1
            """,
            {"system": planted_system, "id": planted_id},
        )
    ingest_and_staging = dg.AssetSelection.groups("ingest") | dg.AssetSelection.assets(
        *dbt_identity_inputs.keys
    )

    result = run_pipeline(folder / "raw", warehouse, ingest_and_staging)

    assert result.success and redelivered >= 2
    assert staged(warehouse) == staged_before
    assert traces(warehouse, customer_id, values, but=("raw",)) == []
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        assert connection.execute(
            "select count(*) from raw.purchases where order_id = 'planted'"
        ).fetchone() == (1,)
        assert connection.execute(
            "select count(*) from raw.customers where _source_file like '%theirs_%'"
        ).fetchone() == (0,)
        assert connection.execute("select count(*) from raw._erasure_log").fetchone() == (1,)
    reports = [json.loads(path.read_text()) for path in (export_dir / "erasure").glob("*.json")]
    (swept,) = [report for report in reports if not report["requests"]]
    assert swept["redelivered_rows_removed"]["raw.customers"] == redelivered
    assert all(path.startswith("customers/") for path in swept["extract_files_holding_erased_rows"])


def test_requests_resolve_to_one_customer_or_none_and_later_deliveries_of_the_erased_are_swept(tmp_path):
    """On a small warehouse written by hand: a phone two customers of a household share erases no one
    (ambiguous: delivered again with a key naming its person, it is looked at again); an e-mail no record holds yet is erased in advance (not_found: a customer
    record delivered later with it is swept at load); a request without a key is invalid; a source id erases its
    customer's every record, and a purchase of theirs delivered later leaves raw as it loads."""
    from dagster_project.lib import erasure
    from dagster_project.lib.contracts import FAMILIES_BY_NAME
    from dagster_project.lib.ingest import ensure_raw_tables

    def deliver(connection, family, rows, at):
        for number, row in enumerate(rows, start=1):
            values = {**row, "_source_file": f"{family}/{row['_source_system']}/f.csv", "_row_number": number}
            connection.execute(
                f"insert into raw.{family} ({', '.join(values)}, _loaded_at) values "
                f"({', '.join('?' for _ in values)}, ?)",
                [*values.values(), at],
            )

    first, later = datetime(2026, 1, 5, 10), datetime(2026, 1, 6, 10)
    with duckdb.connect(str(tmp_path / "w.duckdb")) as connection:
        for family in FAMILIES_BY_NAME.values():
            ensure_raw_tables(connection, family)
        deliver(
            connection,
            "customers",
            [
                {
                    "_source_system": "crm",
                    "source_customer_id": "1",
                    "full_name": "Ana Lima",
                    "email": "ana@lima.com.br",
                    "phone": "(11) 98765-4321",
                },
                {
                    "_source_system": "crm",
                    "source_customer_id": "2",
                    "full_name": "Rui Lima",
                    "email": "rui@lima.com.br",
                    "phone": "11987654321",
                },
                {
                    "_source_system": "loja",
                    "source_customer_id": "L1",
                    "full_name": "Ana Lima",
                    "document_id": "529.982.247-25",
                },
            ],
            first,
        )
        deliver(
            connection,
            "purchases",
            [
                {
                    "_source_system": "loja",
                    "order_id": "o1",
                    "source_customer_id": "L1",
                    "purchased_at": first,
                    "amount": 10,
                },
                {
                    "_source_system": "loja",
                    "order_id": "o2",
                    "source_customer_id": "R2",
                    "purchased_at": first,
                    "amount": 20,
                },
            ],
            first,
        )
        connection.execute(
            """
            insert into raw._quarantine (family, source_system, row_number, reason, raw_record) values
                ('purchases', 'loja', 3, 'amount: not a number', '{"order_id": "o9", "source_customer_id": "L1 "}'),
                ('purchases', 'loja', 4, 'unquoted quote', 'o10;"L1";2026-01-05;12,5"'),
                ('purchases', 'loja', 5, 'unquoted quote', 'o11;"L10";2026-01-05;12,5"'),
                ('purchases', 'crm', 6, 'amount: not a number', '{"order_id": "o12", "source_customer_id": "L1"}')
            """
        )
        connection.execute("create schema marts")
        connection.execute(
            "create table marts.customer_id_map as select * from (values ('crm', '1', 1), ('loja', 'L1', 1), "
            "('crm', '2', 2), ('loja', 'R2', 2)) as t(source_system, source_customer_id, customer_id)"
        )
        connection.execute("create table marts.customer_360 as select range as customer_id from range(1, 3)")
        deliver(
            connection,
            "erasure_requests",
            [
                {
                    "_source_system": "dpo",
                    "request_id": "by-phone",
                    "phone": "+55 11 98765-4321",
                    "requested_at": first,
                },
                {
                    "_source_system": "dpo",
                    "request_id": "ahead",
                    "email": " Zoe@Lima.com.br",
                    "requested_at": first,
                },
                {
                    "_source_system": "dpo",
                    "request_id": "no-key",
                    "legal_basis": "LGPD",
                    "requested_at": first,
                },
                {
                    "_source_system": "dpo",
                    "request_id": "by-id",
                    "source_system": "crm",
                    "source_customer_id": " 1",
                    "requested_at": first,
                },
            ],
            first,
        )

        run = erasure.execute(
            connection, first, tmp_path / "exports", tmp_path / "s.duckdb", tmp_path / "w", "r1"
        )

        statuses = {
            outcome.request_id: (outcome.status, outcome.customers, outcome.records)
            for outcome in run.requests
        }
        assert statuses == {
            "by-phone": ("ambiguous", 0, 0),
            "ahead": ("not_found", 0, 0),
            "no-key": ("invalid", 0, 0),
            "by-id": ("erased", 1, 2),
        }
        assert connection.execute("select customer_id from marts.customer_360").fetchall() == [(2,)]
        assert connection.execute("select source_customer_id from raw.customers order by 1").fetchall() == [
            ("2",)
        ]
        assert connection.execute("select order_id from raw.purchases").fetchall() == [("o2",)]
        assert connection.execute("select row_number from raw._quarantine order by 1").fetchall() == [
            (5,),
            (6,),
        ]
        assert connection.execute(
            "select request_id from raw.erasure_requests where phone is not null"
        ).fetchall() == [("by-phone",)]  # the executed requests' keys are blank
        assert connection.execute(
            "select max(highest_issued_customer_id) from raw._erasure_state"
        ).fetchone() == (0,)

        # The next run: every request is settled. The phone request, now held by Rui alone, erases no one until it
        # is delivered again with a key naming its person.
        again = erasure.execute(
            connection, later, tmp_path / "exports", tmp_path / "s.duckdb", tmp_path / "w", "r2"
        )
        assert again.requests == []

        # Later deliveries: the person erased in advance, and a purchase of the erased customer's store record.
        deliver(
            connection,
            "customers",
            [
                {"_source_system": "ecommerce", "source_customer_id": "E7", "email": "zoe@lima.com.br"},
                {"_source_system": "ecommerce", "source_customer_id": "E8", "email": "eva@lima.com.br"},
            ],
            later,
        )
        deliver(
            connection,
            "purchases",
            [
                {
                    "_source_system": "ecommerce",
                    "order_id": "o3",
                    "source_customer_id": "E7",
                    "purchased_at": later,
                    "amount": 5,
                },
                {
                    "_source_system": "loja",
                    "order_id": "o4",
                    "source_customer_id": "L1",
                    "purchased_at": later,
                    "amount": 7,
                },
            ],
            later,
        )
        swept_customers = erasure.sweep(connection, "customers", later, tmp_path / "exports", "r3")
        swept_purchases = erasure.sweep(connection, "purchases", later, tmp_path / "exports", "r3")
        assert swept_customers.swept == {"raw.customers": 1, "raw.purchases": 1}  # E7 and its purchase o3
        assert swept_purchases.swept == {"raw.purchases": 1}  # o4 of the erased L1
        assert connection.execute("select source_customer_id from raw.customers order by 1").fetchall() == [
            ("2",),
            ("E8",),
        ]
        assert connection.execute("select order_id from raw.purchases").fetchall() == [("o2",)]
        log = connection.execute(
            "select request_id, status, records from raw._erasure_log order by 1"
        ).fetchall()
        assert log == [
            ("ahead", "not_found", 0),
            ("by-id", "erased", 2),
            ("by-phone", "ambiguous", 0),
            ("no-key", "invalid", 0),
        ]
        # The tombstones are the salted hashes of exactly what was erased: the records, Ana's e-mail and CPF and
        # the e-mail erased ahead, and E7 - never a value, never the household's phone.
        tombstones = connection.execute(
            "select key_kind, key_hash from raw._erasure_tombstones order by all"
        ).fetchall()
        expected = [
            (kind, connection.execute("select raw.erasure_hash($kind, $value)", {"kind": kind, "value": value}).fetchone()[0])
            for kind, value in (
                ("record", "crm:1"), ("record", "loja:L1"), ("record", "ecommerce:E7"),
                ("email", "ana@lima.com.br"), ("email", "zoe@lima.com.br"), ("document", "52998224725"),
            )
        ]  # fmt: skip
        assert tombstones == sorted(expected)


def test_an_erasure_is_executed_and_delivered_in_a_run_another_file_fails(built_sample, tmp_path):
    """A bad file of another family fails the run, but the erasure delivered beside it is executed at once: the
    person leaves raw, the marts, the export files and the serving file in that run."""
    folder = copy_of(built_sample[0], tmp_path / "built")
    warehouse, serving, export_dir = (
        folder / "warehouse.duckdb",
        folder / "serving.duckdb",
        folder / "exports",
    )
    exported = [row[0] for rows in exported_rows(export_dir).values() for row in rows[1:]]
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        customer_id, email = the_person(connection, among=sorted({int(id_) for id_ in exported}))
        values = their_values(connection, customer_id)
    requests = folder / "raw" / "erasure_requests" / "dpo"
    requests.mkdir(parents=True)
    (requests / "requests.csv").write_text(
        f"request_id,email,requested_at\nR-1,{email},2026-01-05 09:30:00\n"
    )
    (folder / "raw" / "purchases" / "loja" / "garbled.csv").write_text("not;a;purchases;file\n1;2;3;4\n")

    result = run_pipeline(folder / "raw", warehouse)

    assert not result.success
    assert traces(warehouse, customer_id, values) == []
    assert traces(serving, customer_id, values) == []
    assert str(customer_id) in exported  # they were in a delivered file, and are no more
    assert str(customer_id) not in [row[0] for rows in exported_rows(export_dir).values() for row in rows[1:]]
