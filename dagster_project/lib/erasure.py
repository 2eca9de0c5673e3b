"""The right to erasure (LGPD Art. 18; docs/privacy.md).

An erasure request (extract family `erasure_requests`) names a person by one or more keys. Once the family
loads, `execute`:
  1. resolves each request not yet executed to the records it names - a source system's customer id, or the
     customer records holding its e-mail (lower-cased), CPF/CNPJ or phone (by their digits), as delivered or as
     staging keyed them - and through the identity graph of the last build (marts.customer_id_map) to every
     record of their customer. Keys naming more than one customer erase nothing (`ambiguous`: delivered anew
     with a key that settles it - a source id, a CPF - it is looked at again);
  2. keeps salted hashes of their records, e-mails and documents (raw._erasure_tombstones), never the values:
     the salt is in the warehouse's macro raw.erasure_hash, made once;
  3. deletes their rows from raw (every family, and the quarantine), from every table the builds wrote (by
     customer id, record key or source record), from the serving file (written anew: no freed page keeps
     them) and from every export folder; the stable-id ledger keeps the highest id it issued
     (raw._erasure_state), so their ids are never issued again;
  4. logs each request (raw._erasure_log: received, executed, status, customers, records, rows removed by
     table) and blanks the request's own keys in raw.erasure_requests.
After every later load of a family, `sweep` removes what it brought of erased people: rows of an erased record,
and a customer record carrying an erased e-mail or document; staging anti-joins the tombstones as well.
Both run inside the ingest assets (defs/ingest.py), as soon as the family loads: an erasure is executed even in
a run another file fails.
This module is the one writer of the tables above; nothing it logs or returns holds a personal value.
"""

from __future__ import annotations

import json
import secrets
import shutil
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb

from dagster_project.lib.contracts import FAMILIES
from dagster_project.lib.exports import prepared_folder, remove_customers
from dagster_project.lib.publish import attached, partial_name
from dagster_project.lib.warehouse import has_table, scalar, transaction

TOMBSTONES = "raw._erasure_tombstones"
REQUEST_LOG = "raw._erasure_log"
STATE = "raw._erasure_state"
REQUESTS = "raw.erasure_requests"
QUARANTINE = "raw._quarantine"
CUSTOMER_ID_MAP = "marts.customer_id_map"
LEDGER = "intermediate.int_customer_id_assignments"
STAGED_CUSTOMERS = "staging.stg_raw__customers"
# Families whose rows belong to a source customer record.
PERSONAL_FAMILIES = tuple(
    family.name
    for family in FAMILIES
    if "source_customer_id" in family.column_names and family.name != "erasure_requests"
)
# A key's digits, as the request and the raw rows are compared (the delivered text, not staging's keys).
DIGITS = "regexp_replace(coalesce({}, ''), '[^0-9]', '', 'g')"
# The request columns that name the person: blanked once the request is executed.
REQUEST_KEYS = ("source_system", "source_customer_id", "document_id", "email", "phone")
# Where a request is done with: it is not looked at again unless it is delivered anew (an ambiguous request
# with a key that settles it: a phone held by one customer once another is erased names no one more surely).
FINAL_STATUSES = ("erased", "not_found", "invalid", "ambiguous")


@dataclass(frozen=True)
class RequestOutcome:
    request_id: str
    status: str  # erased | not_found | ambiguous | invalid
    customers: int
    records: int
    rows_removed: dict[str, int]

    def as_report(self) -> dict[str, object]:
        return {
            "request_id": self.request_id,
            "status": self.status,
            "customers": self.customers,
            "records": self.records,
            "rows_removed": self.rows_removed,
        }


@dataclass
class ErasureRun:
    requests: list[RequestOutcome] = field(default_factory=list)
    swept: dict[str, int] = field(default_factory=dict)  # rows of erased records delivered again, by table
    delivered: dict[str, int] = field(default_factory=dict)  # rows removed from exports and the serving file
    source_files: list[str] = field(default_factory=list)  # extract files that held erased rows (operator's)
    report: Path | None = None

    @property
    def by_status(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for outcome in self.requests:
            counts[outcome.status] = counts.get(outcome.status, 0) + 1
        return counts

    def as_report(self) -> dict[str, object]:
        """What was erased and where, and which extract files held the erased rows: request ids, counts and file
        names, never a personal value (the report file and the run's metadata)."""
        return {
            "requests": [outcome.as_report() for outcome in self.requests],
            "delivered_rows_removed": self.delivered,
            "redelivered_rows_removed": self.swept,
            "extract_files_holding_erased_rows": self.source_files,
        }

    def summary(self) -> str:
        parts = []
        if self.requests:
            statuses = ", ".join(f"{count} {status}" for status, count in sorted(self.by_status.items()))
            parts.append(f"{len(self.requests)} request(s) ({statuses})")
        if self.swept:
            parts.append(f"{sum(self.swept.values()):,} row(s) of erased people delivered again removed")
        report = f" (report {self.report})" if self.report else ""
        return f"erasure: {'; '.join(parts) or 'nothing to do'}{report}"


def ensure_tables(connection: duckdb.DuckDBPyConnection) -> None:
    """The erasure's tables, and the salted hash: raw.erasure_hash(kind, value), its salt drawn once."""
    connection.execute("create schema if not exists raw")
    salt = secrets.token_hex(32)  # kept only if the macro is new
    connection.execute(
        "create macro if not exists raw.erasure_hash(kind, value) as "
        f"sha256('{salt}' || '|' || kind || '|' || value)"
    )
    connection.execute(
        f"create table if not exists {TOMBSTONES} (key_kind varchar, key_hash varchar, erased_at timestamp)"
    )
    connection.execute(
        f"""
        create table if not exists {REQUEST_LOG} (
            request_id varchar, requested_at timestamp, legal_basis varchar, received_at timestamp,
            executed_at timestamp, status varchar, customers bigint, records bigint, rows_removed json,
            request_loaded_at timestamp
        )
        """
    )
    connection.execute(f"create table if not exists {STATE} (highest_issued_customer_id bigint)")
    if scalar(connection, f"select count(*) from {STATE}") == 0:
        connection.execute(f"insert into {STATE} values (0)")


def execute(
    connection: duckdb.DuckDBPyConnection,
    now: datetime,
    export_dir: Path,
    serving: Path,
    warehouse: Path,
    run_id: str,
) -> ErasureRun:
    """Execute the requests not executed yet (module docstring), and remove the erased customers from what was
    delivered."""
    ensure_tables(connection)
    run = ErasureRun()
    erased_customers: set[int] = set()
    # Every request is looked up first, then executed: what one request erases does not change what another
    # names (a phone two customers share stays ambiguous after one of them is erased).
    resolutions = [
        _resolve(connection, request_id, loaded_at) for request_id, loaded_at in _pending(connection)
    ]
    for resolution in resolutions:
        outcome, files = _execute_request(connection, resolution, now)
        run.requests.append(outcome)
        if outcome.status == "erased":
            erased_customers |= resolution.customers
        run.source_files += files
    run.source_files = sorted(set(run.source_files))
    if erased_customers:
        run.delivered = _remove_from_deliveries(
            connection, erased_customers, export_dir, serving, warehouse, now
        )
    if run.requests:
        run.report = _write_report(export_dir, run, now, run_id)
    return run


# ------------------------------------------------------------------------------------------ requests


def _pending(connection: duckdb.DuckDBPyConnection) -> list[tuple[str, datetime]]:
    """Requests whose latest delivery the log has not settled: new, delivered anew, or ambiguous last time."""
    if not has_table(connection, "raw", "erasure_requests"):
        return []
    return connection.execute(
        f"""
        with latest as (
            select request_id, max(_loaded_at) as loaded_at from {REQUESTS} group by request_id
        )
        select latest.request_id, latest.loaded_at
        from latest
        left join {REQUEST_LOG} as log on log.request_id = latest.request_id
        where log.request_id is null
            or log.status not in {FINAL_STATUSES}
            or latest.loaded_at > log.request_loaded_at
        order by latest.loaded_at, latest.request_id
        """
    ).fetchall()


@dataclass(frozen=True)
class Resolution:
    """What a request names, looked up before any request of the run is executed."""

    request_id: str
    loaded_at: datetime
    status: str
    records: tuple[tuple[str, str], ...]  # (source_system, source_customer_id), every record of its customer
    customers: frozenset[int]


def _resolve(connection: duckdb.DuckDBPyConnection, request_id: str, loaded_at: datetime) -> Resolution:
    _select_request(connection, request_id)
    if scalar(connection, "select count(*) from _request_keys") == 0:
        return Resolution(request_id, loaded_at, "invalid", (), frozenset())
    matched = _matched_records(connection)
    customers = _customers_of(connection)
    if len(customers) > 1:
        return Resolution(request_id, loaded_at, "ambiguous", (), frozenset())
    _all_records_of(connection, customers)
    records = tuple(connection.execute("select * from _erased_records order by all").fetchall())
    return Resolution(
        request_id, loaded_at, "erased" if matched else "not_found", records, frozenset(customers)
    )


def _select_request(connection: duckdb.DuckDBPyConnection, request_id: str) -> None:
    """Temp tables _request (the request's latest delivery) and _request_keys."""
    connection.execute(
        f"""
        create or replace temp table _request as
        select * from {REQUESTS}
        where request_id = $id
        qualify row_number() over (order by _loaded_at desc, _source_file desc, _row_number desc) = 1
        """,
        {"id": request_id},
    )
    _request_keys(connection)


def _execute_request(
    connection: duckdb.DuckDBPyConnection, resolution: Resolution, now: datetime
) -> tuple[RequestOutcome, list[str]]:
    removed: dict[str, int] = {}
    files: list[str] = []
    with transaction(connection):
        _select_request(connection, resolution.request_id)
        if resolution.status in ("erased", "not_found"):
            connection.execute(
                "create or replace temp table _erased_records as "
                "select unnest($systems::varchar[]) as source_system, unnest($ids::varchar[]) as source_customer_id",
                {
                    "systems": [system for system, _ in resolution.records],
                    "ids": [source_id for _, source_id in resolution.records],
                },
            )
            _tombstone(connection, now, with_request_keys=True)
            files = _source_files(connection)
            removed = _erase_records(connection, set(resolution.customers))
            _blank_request(connection, resolution.request_id)
        erased = resolution.status == "erased"
        outcome = RequestOutcome(
            resolution.request_id,
            resolution.status,
            len(resolution.customers) if erased else 0,
            len(resolution.records) if erased else 0,
            removed,
        )
        _log(connection, outcome, resolution.loaded_at, now)
    return outcome, files


def _request_keys(connection: duckdb.DuckDBPyConnection) -> None:
    """_request_keys(kind, value): the request's keys as compared - a record (system:id), an e-mail lower-cased,
    a document's digits (9 or more), a phone's digits (10 or more, compared by their last ten)."""
    connection.execute(
        f"""
        create or replace temp table _request_keys as
        select distinct kind, value from (
            select 'record' as kind, trim(source_system) || ':' || trim(source_customer_id) as value
            from _request
            where nullif(trim(source_system), '') is not null and nullif(trim(source_customer_id), '') is not null
            union all
            select 'email', nullif(lower(trim(email)), '') from _request
            union all
            select 'document', {DIGITS.format("document_id")} from _request
            where length({DIGITS.format("document_id")}) >= 9
            union all
            select 'phone', {DIGITS.format("phone")} from _request where length({DIGITS.format("phone")}) >= 10
        )
        where value is not null
        """
    )


def _matched_records(connection: duckdb.DuckDBPyConnection) -> int:
    """_erased_records(source_system, source_customer_id): the records the request's keys name; returns how many
    exist (in raw, or in the last build)."""
    staged = (
        f"""
        union all
        select staged.source_system, staged.source_customer_id
        from {STAGED_CUSTOMERS} as staged
        join _request_keys as keys
            on (keys.kind = 'email' and staged.email_key = keys.value)
            or (keys.kind = 'document' and staged.document_key = keys.value)
        """
        if has_table(connection, "staging", "stg_raw__customers")
        else ""
    )
    # A source id is looked for in every family (a record only facts name is a record too), only if one is given.
    by_record = scalar(connection, "select count(*) from _request_keys where kind = 'record'") > 0
    facts = " union all ".join(
        f"""select _source_system, trim(source_customer_id) from raw.{name}
            where _source_system || ':' || trim(source_customer_id) in
                (select value from _request_keys where kind = 'record')"""
        for name in PERSONAL_FAMILIES
        if by_record and has_table(connection, "raw", name)
    )
    mapped = (
        f" union all select source_system, source_customer_id from {CUSTOMER_ID_MAP}"
        if by_record and has_table(connection, "marts", "customer_id_map")
        else ""
    )
    connection.execute(
        f"""
        create or replace temp table _erased_records as
        with delivered as (
            select _source_system as source_system, trim(source_customer_id) as source_customer_id,
                lower(trim(email)) as email, {DIGITS.format("document_id")} as document,
                {DIGITS.format("phone")} as phone
            from raw.customers
        ),
        known_records as ({facts or "select null::varchar, null::varchar where false"}{mapped})
        select distinct source_system, source_customer_id from (
            select delivered.source_system, delivered.source_customer_id
            from delivered join _request_keys as keys on keys.kind = 'email' and delivered.email = keys.value
            union all
            select delivered.source_system, delivered.source_customer_id
            from delivered join _request_keys as keys on keys.kind = 'document' and delivered.document = keys.value
            union all
            select delivered.source_system, delivered.source_customer_id
            from delivered join _request_keys as keys
                on keys.kind = 'phone' and right(delivered.phone, 10) = right(keys.value, 10)
                and length(delivered.phone) >= 10
            union all
            select known.* from known_records as known(source_system, source_customer_id)
            join _request_keys as keys
                on keys.kind = 'record' and known.source_system || ':' || known.source_customer_id = keys.value
            {staged}
        )
        """
        if has_table(connection, "raw", "customers")
        else "create or replace temp table _erased_records (source_system varchar, source_customer_id varchar)"
    )
    return scalar(connection, "select count(*) from _erased_records")


def _customers_of(connection: duckdb.DuckDBPyConnection) -> set[int]:
    if not has_table(connection, "marts", "customer_id_map"):
        return set()
    rows = connection.execute(
        f"""
        select distinct ids.customer_id from {CUSTOMER_ID_MAP} as ids
        semi join _erased_records as erased
            on ids.source_system = erased.source_system and ids.source_customer_id = erased.source_customer_id
        """
    ).fetchall()
    return {customer_id for (customer_id,) in rows}


def _all_records_of(connection: duckdb.DuckDBPyConnection, customers: set[int]) -> None:
    """Add to _erased_records every record of `customers` in the identity graph."""
    if customers:
        connection.execute(
            f"""
            insert into _erased_records
            select source_system, source_customer_id from {CUSTOMER_ID_MAP}
            where list_contains($customers, customer_id)
            except
            select source_system, source_customer_id from _erased_records
            """,
            {"customers": sorted(customers)},
        )


def _tombstone(connection: duckdb.DuckDBPyConnection, now: datetime, with_request_keys: bool) -> None:
    """Hash the erased records, their e-mails and documents (as delivered, and as staging keyed them: a value
    staging found no key in - blank, junk, blocked - is no tombstone), and the request's own e-mail and
    document (so that a person not delivered yet never comes in)."""
    staged = (
        f"""
        union all
        select 'email', staged.email_key from {STAGED_CUSTOMERS} as staged semi join _erased_records as erased
            using (source_system, source_customer_id)
        union all
        select 'document', staged.document_key from {STAGED_CUSTOMERS} as staged semi join _erased_records as erased
            using (source_system, source_customer_id)
        """
        if has_table(connection, "staging", "stg_raw__customers")
        else ""
    )
    delivered = (
        f"""
        union all
        select 'email', lower(trim(rows.email)) from raw.customers as rows
        join _erased_records as erased
            on rows._source_system = erased.source_system and trim(rows.source_customer_id) = erased.source_customer_id
        union all
        select 'document', {DIGITS.format("rows.document_id")} from raw.customers as rows
        join _erased_records as erased
            on rows._source_system = erased.source_system and trim(rows.source_customer_id) = erased.source_customer_id
        """
        if has_table(connection, "raw", "customers")
        else ""
    )
    requested = (
        "union all select kind, value from _request_keys where kind in ('record', 'email', 'document')"
        if with_request_keys
        else ""
    )
    blocked = (
        "and value not in (select key_value from intermediate.int_identity_keys_blocked where key_value is not null)"
        if has_table(connection, "intermediate", "int_identity_keys_blocked")
        else ""
    )
    connection.execute(
        f"""
        insert into {TOMBSTONES}
        select distinct kind, raw.erasure_hash(kind, value), $now
        from (
            select 'record' as kind, source_system || ':' || source_customer_id as value from _erased_records
            {staged}
            {delivered}
            {requested}
        )
        where value is not null and value != '' and (kind = 'record' or length(value) >= 5) {blocked}
            and raw.erasure_hash(kind, value) not in (select key_hash from {TOMBSTONES})
        """,
        {"now": now},
    )


def _source_files(connection: duckdb.DuckDBPyConnection) -> list[str]:
    """The extract files (the company's, on disk) holding rows of the erased records."""
    files = " union ".join(
        f"""select distinct rows._source_file from raw.{name} as rows semi join _erased_records as erased
            on rows._source_system = erased.source_system and trim(rows.source_customer_id) = erased.source_customer_id"""
        for name in PERSONAL_FAMILIES
        if has_table(connection, "raw", name)
    )
    return [path for (path,) in connection.execute(files).fetchall()] if files else []


def _blank_request(connection: duckdb.DuckDBPyConnection, request_id: str) -> None:
    """The request's keys leave raw (its id, dates and legal basis stay), and so do its quarantined rows."""
    blank = ", ".join(f"{column} = null" for column in REQUEST_KEYS)
    connection.execute(f"update {REQUESTS} set {blank} where request_id = $id", {"id": request_id})
    connection.execute(
        f"""
        delete from {QUARANTINE} where family = 'erasure_requests'
            and case when json_valid(raw_record) then json_extract_string(raw_record, '$.request_id') end = $id
        """,
        {"id": request_id},
    )


def _log(
    connection: duckdb.DuckDBPyConnection, outcome: RequestOutcome, loaded_at: datetime, now: datetime
) -> None:
    connection.execute(f"delete from {REQUEST_LOG} where request_id = $id", {"id": outcome.request_id})
    connection.execute(
        f"""
        insert into {REQUEST_LOG}
        select request_id, requested_at, legal_basis, _loaded_at, $now, $status, $customers, $records,
            $removed::json, $loaded_at
        from _request
        """,
        {
            "now": now,
            "status": outcome.status,
            "customers": outcome.customers,
            "records": outcome.records,
            "removed": json.dumps(outcome.rows_removed, sort_keys=True),
            "loaded_at": loaded_at,
        },
    )


# ------------------------------------------------------------------------------------------ removal


def _erase_records(connection: duckdb.DuckDBPyConnection, customers: set[int]) -> dict[str, int]:
    """Delete every row of the records in _erased_records and of `customers`, in every schema of the
    warehouse; rows removed by table. The ledger's highest issued id is kept first."""
    if has_table(connection, "intermediate", "int_customer_id_assignments"):
        connection.execute(
            f"""
            update {STATE} set highest_issued_customer_id = greatest(
                highest_issued_customer_id, (select coalesce(max(customer_id), 0) from {LEDGER})
            )
            """
        )
    connection.execute(
        "create or replace temp table _erased_customers as select unnest($ids::bigint[]) as customer_id",
        {"ids": sorted(customers)},
    )
    connection.execute(
        "create or replace temp table _erased_record_keys as "
        "select source_system || ':' || source_customer_id as record_key from _erased_records"
    )
    removed: dict[str, int] = {}

    def delete(name: str, relation: str, condition: str) -> None:
        rows = scalar(connection, f"delete from {relation} where {condition}")
        if rows:
            removed[name] = removed.get(name, 0) + rows

    record = "(_source_system, trim(source_customer_id)) in (select source_system, source_customer_id from _erased_records)"
    for name in PERSONAL_FAMILIES:
        if has_table(connection, "raw", name):
            delete(f"raw.{name}", f"raw.{name}", record)
    # A quarantined row of theirs: a record that parsed (JSON, by its source id), or a line the CSV reader could
    # not split (text: one of its fields is their source id).
    families = ", ".join(f"'{name}'" for name in PERSONAL_FAMILIES)
    in_quarantine = [
        f"""(family in ({families}) and (source_system, case when json_valid(raw_record)
            then trim(json_extract_string(raw_record, '$.source_customer_id')) end) in (select * from _erased_records))""",
        f"""(family in ({families}) and not json_valid(raw_record) and exists (
            select 1 from _erased_records as erased where erased.source_system = {QUARANTINE}.source_system
                and list_contains(list_transform(string_split_regex(raw_record, '[,;|\t"]'), field -> trim(field)),
                    erased.source_customer_id)))""",
    ]
    delete(QUARANTINE, QUARANTINE, " or ".join(in_quarantine))
    for name, relation, condition in _derived_conditions(connection):
        delete(name, relation, condition)
    if has_table(connection, "intermediate", "int_customer_id_assignments"):
        blanked = scalar(
            connection,
            f"""update {LEDGER} set previous_customer_id = null
                where previous_customer_id in (select customer_id from _erased_customers)""",
        )
        if blanked:
            removed[f"{LEDGER} (previous_customer_id blanked)"] = blanked
    return removed


def _derived_conditions(
    connection: duckdb.DuckDBPyConnection, catalog: str | None = None
) -> list[tuple[str, str, str]]:
    """For every table outside raw (of `catalog`, the warehouse by default): its name, relation, and the condition
    naming the erased
    rows - a customer id (`customer_id`, `*_customer_id`, a list `*customer_ids`), a record key (`record_key`,
    `*_record_key`), or a source record (`[prefix]source_system` with `[prefix]source_customer_id`). A record's
    former id (`previous_customer_id`) is not its customer: the ledger's row stays (the id is blanked)."""
    catalog = catalog or scalar(connection, "select current_database()")
    columns = connection.execute(
        """
        select columns.schema_name, columns.table_name, columns.column_name, columns.data_type
        from duckdb_columns() as columns
        join duckdb_tables() as tables
            on tables.database_name = columns.database_name and tables.schema_name = columns.schema_name
            and tables.table_name = columns.table_name
        where columns.database_name = $catalog and columns.schema_name != 'raw'
        order by columns.schema_name, columns.table_name, columns.column_index
        """,
        {"catalog": catalog},
    ).fetchall()
    by_table: dict[tuple[str, str], dict[str, str]] = {}
    for schema, table, column, data_type in columns:
        by_table.setdefault((schema, table), {})[column] = data_type
    found = []
    for (schema, table), types in by_table.items():
        conditions = []
        for column, data_type in types.items():
            quoted = f'"{column}"'
            if column.endswith("source_customer_id"):
                system = column.removesuffix("source_customer_id") + "source_system"
                if system in types:
                    conditions.append(
                        f'("{system}", {quoted}) in (select source_system, source_customer_id from _erased_records)'
                    )
            elif column == "customer_id" or column.endswith("_customer_id"):
                if column != "previous_customer_id" and data_type in (
                    "BIGINT",
                    "INTEGER",
                    "HUGEINT",
                    "UBIGINT",
                ):
                    conditions.append(f"{quoted} in (select customer_id from _erased_customers)")
            elif column.endswith("customer_ids") and data_type.endswith("[]"):
                conditions.append(
                    f"list_has_any({quoted}, (select coalesce(list(customer_id), []) from _erased_customers))"
                )
            elif column == "record_key" or column.endswith("_record_key"):
                conditions.append(f"{quoted} in (select record_key from _erased_record_keys)")
        if conditions:
            found.append((f"{schema}.{table}", f'"{catalog}"."{schema}"."{table}"', " or ".join(conditions)))
    return found


def sweep(
    connection: duckdb.DuckDBPyConnection,
    family: str,
    loaded_at: datetime,
    export_dir: Path,
    run_id: str,
) -> ErasureRun:
    """After a family's load: its rows loaded at `loaded_at` that belong to an erased record - or, for customer
    records, carry an erased e-mail or document (then every row of that record goes) - leave raw, and their
    records are tombstoned. Costs a hash per new row, and nothing while no one was erased."""
    ensure_tables(connection)
    run = ErasureRun()
    if family not in PERSONAL_FAMILIES or not scalar(connection, f"select count(*) from {TOMBSTONES}"):
        return run
    tombstoned = f"in (select key_hash from {TOMBSTONES} where key_kind = '{{}}')"
    erased_keys = (
        f"""or raw.erasure_hash('email', lower(trim(email))) {tombstoned.format("email")}
            or raw.erasure_hash('document', {DIGITS.format("document_id")}) {tombstoned.format("document")}"""
        if family == "customers"
        else ""
    )
    with transaction(connection):
        connection.execute(
            f"""
            create or replace temp table _erased_records as
            select distinct _source_system as source_system, trim(source_customer_id) as source_customer_id
            from raw.{family}
            where _loaded_at = $at and (
                raw.erasure_hash('record', _source_system || ':' || trim(source_customer_id)) {tombstoned.format("record")}
                {erased_keys}
            )
            """,
            {"at": loaded_at},
        )
        if scalar(connection, "select count(*) from _erased_records"):
            _tombstone(connection, loaded_at, with_request_keys=False)
            run.source_files = _source_files(connection)
            run.swept = _erase_records(connection, set())
    if run.swept:
        run.report = _write_report(export_dir, run, loaded_at, run_id)
    return run


# ------------------------------------------------------------------------------------------ deliveries


def _remove_from_deliveries(
    connection: duckdb.DuckDBPyConnection,
    customers: set[int],
    export_dir: Path,
    serving: Path,
    warehouse: Path,
    now: datetime,
) -> dict[str, int]:
    """The erased customers leave every export folder and the serving file at once (a later step may fail)."""
    removed: dict[str, int] = {}
    for manifest in sorted(export_dir.glob("*/manifest.json")) if export_dir.is_dir() else []:
        removed |= remove_customers(
            manifest.parent, lambda entry: customers, "erased_removed", "erasures_applied_at", now
        )
    if serving.exists():
        removed |= _rewrite_serving(connection, serving, customers)
    shutil.rmtree(prepared_folder(warehouse), ignore_errors=True)  # a killed run's segments: made again
    return removed


def _rewrite_serving(
    connection: duckdb.DuckDBPyConnection, serving: Path, customers: set[int]
) -> dict[str, int]:
    """The serving file written anew without the erased customers' rows (its schema, comments and every other
    row copied), renamed over it: readers keep their snapshot, and no freed page of the new file holds them."""
    partial = serving.with_name(f"{partial_name(serving)}{uuid.uuid4().hex}")
    removed: dict[str, int] = {}
    connection.execute(
        "create or replace temp table _erased_customers as select unnest($ids::bigint[]) as customer_id",
        {"ids": sorted(customers)},
    )
    connection.execute(
        "create or replace temp table _erased_records (source_system varchar, source_customer_id varchar)"
    )
    connection.execute("create or replace temp table _erased_record_keys (record_key varchar)")
    try:
        with (
            attached(connection, serving, "erasing_from", read_only=True),
            attached(connection, partial, "erased"),
        ):
            connection.execute("copy from database erasing_from to erased (schema)")
            conditions = {
                relation: condition
                for _, relation, condition in _derived_conditions(connection, "erasing_from")
            }
            tables = connection.execute(
                "select schema_name, table_name from duckdb_tables() where database_name = 'erasing_from'"
            ).fetchall()
            for schema, table in tables:
                source = f'"erasing_from"."{schema}"."{table}"'
                condition = conditions.get(source)
                connection.execute(
                    f'insert into "erased"."{schema}"."{table}" select * from {source}'
                    + (f" where not coalesce({condition}, false)" if condition else "")
                )
                if condition:
                    rows = scalar(connection, f"select count(*) from {source} where {condition}")
                    if rows:
                        removed[f"serving {schema}.{table}"] = rows
        partial.replace(serving)
    finally:
        partial.unlink(missing_ok=True)
        partial.with_name(partial.name + ".wal").unlink(missing_ok=True)
    return removed


def _write_report(export_dir: Path, run: ErasureRun, now: datetime, run_id: str) -> Path:
    """<export_dir>/erasure/<when>-<run>.json: what was erased and where, and which extract files on disk held
    the erased rows (the operator's to delete or redact). Request ids, counts and file names only."""
    folder = export_dir / "erasure"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{now:%Y%m%dT%H%M%S}-{run_id[:8]}.json"
    report = {
        "executed_at": now.isoformat(timespec="seconds"),
        "run_id": run_id,
        **run.as_report(),
        "left_to_the_operator": (
            "customer360 erased these people from its warehouse, serving file and export folders. The extract "
            "files listed, copies of exports already taken out, backups and Dagster's run history before "
            "this run are the company's to delete or redact (docs/privacy.md)."
        ),
    }
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(json.dumps(report, indent=2, ensure_ascii=False), encoding="utf-8")
    partial.replace(path)
    return path
