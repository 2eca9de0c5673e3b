"""Load raw extract files into ``raw.<family>`` (docs/contracts.md).

Every file is one unit of work in its own transaction:
  * a file whose content hash is already in ``raw._load_log`` as loaded adds nothing (re-delivery);
  * the file is read by DuckDB as text, in its source's dialect, and its columns mapped to canonical names;
  * a file missing a required column, or that cannot be read at all, is rejected whole, with a message that
    names the file and the column;
  * every value is parsed to its canonical type; a row with a value that cannot be parsed (or a required
    value missing), and a line the CSV reader cannot split, goes to ``raw._quarantine`` with file, row,
    column and reason, and the good rows load;
  * a file with a quarantined share above the threshold is rejected: its quarantine rows are kept for
    diagnosis, none of its data rows load;
  * with a raw gate (lib/gates.RawGate), the file's rows are validated after they are inserted and before the
    file commits: a file that fails is rejected by the gate (status `failed_gate`; the ledger says rejected,
    gate_status failed): none of its rows load, and the rows each failed expectation names go to the
    quarantine. A file loaded earlier without a verdict is judged the same way first.
Rejected files are logged as such and tried again on the next run; the caller fails the run (for a file the
gate rejected, the raw gate asset check does, from the verdicts logged in raw._gate_log).
This module is the one writer of raw.<family>, the quarantine and the ledger, but for the rows of an erased
person, which lib/erasure deletes.

Row numbers count data records from 1 (the header is not a record): row 1 is line 2 of a CSV file.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import duckdb

from dagster_project.lib import erasure
from dagster_project.lib.contracts import LINEAGE_COLUMNS, Column, ColumnType, Family
from dagster_project.lib.dialects import SourceDialect, dialect_for, load_dialects
from dagster_project.lib.warehouse import one_row, scalar, sql_literal, transaction

if TYPE_CHECKING:
    from dagster_project.lib.gates import RawGate

DATA_SUFFIXES = (".csv", ".csv.gz", ".parquet")
TRUE_WORDS = ["true", "t", "1", "yes", "y", "sim", "s", "verdadeiro", "v"]
FALSE_WORDS = ["false", "f", "0", "no", "n", "nao", "não", "falso"]
LOAD_LOG = "raw._load_log"
# Delimiters a CSV header is looked at for, to tell a user which `delimiter` to declare in sources.yml.
LIKELY_DELIMITERS = (",", ";", "\t", "|")
HEAD_BYTES = 65536  # enough of a file's start to hold its header line
QUARANTINE = "raw._quarantine"

Status = Literal["loaded", "rejected", "already_loaded", "failed_gate"]
# The ledger's word for a status, where it differs (a file the gate failed is a rejected file there).
LEDGER_STATUS = {"failed_gate": "rejected"}


@dataclass
class FileOutcome:
    """What happened to one file."""

    relative_path: str
    source_system: str
    status: Status
    file_hash: str = ""
    rows_read: int = 0
    rows_loaded: int = 0
    rows_quarantined: int = 0
    message: str = ""
    verdict: Any = None  # the raw gate's GateResult, when a gate judged the file

    @property
    def gate_status(self) -> str | None:
        return None if self.verdict is None else ("passed" if self.verdict.success else "failed")


@dataclass
class FamilyLoad:
    """What one ingest of a family did."""

    family: str
    files: list[FileOutcome] = field(default_factory=list)
    table_rows: int = 0
    quarantine_rows: int = 0
    last_delivery_at: datetime | None = None  # when the newest file of the family loaded (UTC), any run

    def with_status(self, status: Status) -> list[FileOutcome]:
        return [outcome for outcome in self.files if outcome.status == status]

    @property
    def rows_loaded(self) -> int:
        return sum(outcome.rows_loaded for outcome in self.files)

    @property
    def rows_quarantined(self) -> int:
        return sum(outcome.rows_quarantined for outcome in self.files)

    @property
    def verdicts(self) -> list[Any]:
        """The raw gate's verdicts on this ingest's files (GateResult), in load order."""
        return [outcome.verdict for outcome in self.files if outcome.verdict is not None]


class FileRejected(Exception):
    """A file cannot be loaded at all; the message names the file (and the column, where one is at fault)."""


def quote_identifier(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def file_sha256(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


# --------------------------------------------------------------------------------------------- tables


def ensure_raw_tables(connection: duckdb.DuckDBPyConnection, family: Family) -> None:
    """Create raw.<family>, the load log and the quarantine if absent; add contract columns a table lacks."""
    connection.execute("create schema if not exists raw")
    table = f"raw.{quote_identifier(family.name)}"
    columns = [(column.name, column.type.sql) for column in family.columns] + list(LINEAGE_COLUMNS)
    definition = ", ".join(f"{quote_identifier(name)} {sql_type}" for name, sql_type in columns)
    connection.execute(f"create table if not exists {table} ({definition})")
    for name, sql_type in columns:
        connection.execute(
            f"alter table {table} add column if not exists {quote_identifier(name)} {sql_type}"
        )
    connection.execute(
        f"""
        create table if not exists {LOAD_LOG} (
            file_hash varchar, family varchar, source_system varchar, file_path varchar, status varchar,
            rows_read bigint, rows_loaded bigint, rows_quarantined bigint, message varchar,
            loaded_at timestamp, gate_status varchar
        )
        """
    )
    # gate_status: the raw gate's verdict on the file's rows (passed / failed); null for a file loaded without a
    # gate, or by a version that judged files after their commit (judged on the next load with a gate).
    connection.execute(f"alter table {LOAD_LOG} add column if not exists gate_status varchar")
    erasure.ensure_tables(connection)  # the erased people's tombstones, which staging reads
    connection.execute(
        f"""
        create table if not exists {QUARANTINE} (
            family varchar, source_system varchar, file_path varchar, file_hash varchar,
            row_number bigint, column_name varchar, value varchar, reason varchar, raw_record varchar,
            quarantined_at timestamp
        )
        """
    )


# --------------------------------------------------------------------------------------------- files


def discover_files(raw_dir: Path, family: Family) -> tuple[list[tuple[str, Path]], list[FileOutcome]]:
    """Data files of a family as (source_system, path), sorted; plus rejections for files out of place."""
    family_dir = raw_dir / family.name
    found: list[tuple[str, Path]] = []
    misplaced: list[FileOutcome] = []
    if not family_dir.is_dir():
        return found, misplaced
    for path in sorted(family_dir.rglob("*")):
        if not path.is_file() or any(part.startswith(".") for part in path.relative_to(raw_dir).parts):
            continue
        relative = path.relative_to(raw_dir)
        depth = len(relative.parts)
        if depth != 3:
            misplaced.append(
                FileOutcome(
                    relative.as_posix(),
                    relative.parts[1] if depth > 3 else "",
                    "rejected",
                    message=f"{path}: extract files belong in {family_dir}/<source_system>/<file>",
                )
            )
        elif not path.name.lower().endswith(DATA_SUFFIXES):
            misplaced.append(
                FileOutcome(
                    relative.as_posix(),
                    relative.parts[1],
                    "rejected",
                    message=f"{path}: not an extract file (expected one of {', '.join(DATA_SUFFIXES)})",
                )
            )
        else:
            found.append((relative.parts[1], path))
    return found, misplaced


# --------------------------------------------------------------------------------------------- parsing


class Parameters:
    """Named query parameters, so that no value is ever spliced into SQL text."""

    def __init__(self) -> None:
        self.values: dict[str, object] = {}

    def add(self, value: object) -> str:
        name = f"p{len(self.values)}"
        self.values[name] = value
        return f"${name}"


def _number_text(text: str, dialect: SourceDialect, parameters: Parameters, whole: bool = False) -> str:
    """SQL turning a number written in the dialect into canonical text, or NULL if it is not one.
    A whole number may be written with zero decimals (3,00)."""
    decimal = _regex_escape(dialect.decimal_separator)
    decimals = f"({decimal}0*)?" if whole else rf"({decimal}\d*)?"
    if dialect.thousands_separator:
        thousands = _regex_escape(dialect.thousands_separator)
        integer_part = rf"(\d{{1,3}}({thousands}\d{{3}})+|\d+)"
    else:
        integer_part = r"\d+"
    pattern = parameters.add(rf"[-+]?{integer_part}{decimals}")
    canonical = text
    if dialect.thousands_separator:
        canonical = f"replace({canonical}, {parameters.add(dialect.thousands_separator)}, '')"
    if dialect.decimal_separator != ".":
        canonical = f"replace({canonical}, {parameters.add(dialect.decimal_separator)}, '.')"
    return f"case when regexp_full_match({text}, {pattern}) then {canonical} end"


def _regex_escape(character: str) -> str:
    return "\\" + character if character in r".^$*+?{}[]\|()" else character


def _parse_expression(column: Column, text: str, dialect: SourceDialect, parameters: Parameters) -> str:
    """SQL parsing a trimmed text value into the column's canonical type (NULL when it cannot)."""
    match column.type:
        case ColumnType.TEXT:
            return text
        case ColumnType.INTEGER:
            # The text is digits with at most zeros after the point, which DuckDB casts to an integer directly
            # (through decimal(38, 4) took 7 s on 5 million quantities).
            return f"try_cast({_number_text(text, dialect, parameters, whole=True)} as bigint)"
        case ColumnType.DECIMAL:
            return f"try_cast({_number_text(text, dialect, parameters)} as decimal(18, 4))"
        case ColumnType.DATE:
            if dialect.date_formats:
                return f"{_strptime_any(text, dialect.date_formats, parameters)}::date"
            return f"try_cast({text} as date)"
        case ColumnType.TIMESTAMP:
            formats = list(dialect.timestamp_formats) + list(dialect.date_formats)
            if formats:
                return _strptime_any(text, formats, parameters)
            return f"try_cast({text} as timestamp)"
        case ColumnType.BOOLEAN:
            return (
                f"case when list_contains({parameters.add(TRUE_WORDS)}, lower({text})) then true "
                f"when list_contains({parameters.add(FALSE_WORDS)}, lower({text})) then false end"
            )
    raise AssertionError(column.type)


def _strptime_any(text: str, formats: Iterable[str], parameters: Parameters) -> str:
    """The first of the formats that parses the text."""
    return "coalesce(" + ", ".join(f"try_strptime({text}, {parameters.add(form)})" for form in formats) + ")"


def _invalid_reason(column: Column, dialect: SourceDialect) -> str:
    match column.type:
        case ColumnType.INTEGER:
            return f"not a whole number{_number_hint(dialect)}"
        case ColumnType.DECIMAL:
            return f"not a number{_number_hint(dialect)}"
        case ColumnType.DATE:
            return f"not a date (expected {' or '.join(dialect.date_formats) or 'YYYY-MM-DD'})"
        case ColumnType.TIMESTAMP:
            formats = list(dialect.timestamp_formats) + list(dialect.date_formats)
            return f"not a timestamp (expected {' or '.join(formats) or 'YYYY-MM-DD[ HH:MM:SS]'})"
        case ColumnType.BOOLEAN:
            return "not a yes/no value (expected true/false, 1/0, sim/não)"
    return "invalid value"


def _number_hint(dialect: SourceDialect) -> str:
    if dialect.is_canonical_numbers:
        return " (expected digits with '.' as decimal point)"
    return (
        f" (expected decimal separator {dialect.decimal_separator!r}"
        f"{f', thousands separator {dialect.thousands_separator!r}' if dialect.thousands_separator else ''})"
    )


def _parse_query(
    family: Family, header_for: dict[str, str], dialect: SourceDialect, ordinal_sql: str
) -> tuple[str, str, dict[str, object]]:
    """The queries creating temp table _texts (each column's trimmed text) and _parsed (typed columns, their
    texts and the errors per row), and the parameters of the second."""
    parameters = Parameters()
    texts, parsed, record = [], [], []
    errors: dict[str, str] = {}  # SQL condition -> the error (a struct) it raises
    for column in family.columns:
        name = quote_identifier(column.name)
        text_name = quote_identifier("__text__" + column.name)
        header = header_for.get(column.name)
        texts.append(
            f"nullif(trim({quote_identifier(header)}), '') as {text_name}"
            if header is not None
            else f"null::varchar as {text_name}"
        )
        parsed.append(f"{_parse_expression(column, text_name, dialect, parameters)} as {name}")
        record.append(f"{name} := {text_name}")
        column_literal = (
            parameters.add(column.name) if column.required or column.type is not ColumnType.TEXT else ""
        )
        if column.required:
            errors[f"{text_name} is null"] = (
                f"{{'column_name': {column_literal}, 'reason': {parameters.add('required value is missing')}, "
                "'value': null::varchar}"
            )
        if column.type is not ColumnType.TEXT:
            errors[f"{text_name} is not null and {name} is null"] = (
                f"{{'column_name': {column_literal}, 'reason': {parameters.add(_invalid_reason(column, dialect))}, "
                f"'value': {text_name}}}"
            )
    # The list is built only for a row with an error (for every row it took 2 of the 15 s parsing 5M rows).
    error_list = (
        f"case when {' or '.join(f'({condition})' for condition in errors)} then list_filter(["
        + ", ".join(f"case when {condition} then {error} end" for condition, error in errors.items())
        + "], error -> error is not null) else [] end"
        if errors
        else "[]"
    )
    # The trimmed texts are stored first and parsed by a second statement: computing both in one statement,
    # DuckDB 1.4.5 segfaulted now and then inside try_strptime (StrpTimeFormat::Parse) on the Latin-1 legacy
    # file's dates; with the texts stored, 0 crashes in 24 stress runs (about half crashed before).
    texts_query = f"create or replace temp table _texts as select {ordinal_sql} as __row_number, {', '.join(texts)} from _extract"
    query = f"""
        create or replace temp table _parsed as
        with typed as (
            select *, {", ".join(parsed)} from _texts
        ),
        checked as (
            select *, {error_list} as __errors from typed
        )
        -- The delivered record as JSON, for the quarantine: only for the rows that go there.
        select *, case when len(__errors) > 0 then to_json(struct_pack({", ".join(record)}))::varchar end as __record
        from checked
    """
    return texts_query, query, parameters.values


# --------------------------------------------------------------------------------------------- loading


@dataclass(frozen=True)
class LoadContext:
    """What every file load of one ingest shares."""

    raw_dir: Path
    family: Family
    dialects: dict[str, SourceDialect]
    max_quarantine_share: float
    loaded_at: datetime
    gate: RawGate | None = None
    # Called with each verdict on the file's connection before the file commits (the caller logs it there).
    on_verdict: Callable[[duckdb.DuckDBPyConnection, Any], None] | None = None


def load_family(
    connection: duckdb.DuckDBPyConnection,
    raw_dir: Path,
    family: Family,
    max_quarantine_share: float,
    loaded_at: datetime | None = None,
    gate: RawGate | None = None,
    on_verdict: Callable[[duckdb.DuckDBPyConnection, Any], None] | None = None,
) -> FamilyLoad:
    """Load every new file of a family; see the module docstring for the rules. With `gate`, each file's rows
    are judged before the file commits, and `on_verdict(connection, verdict)` runs in the same transaction."""
    context = LoadContext(
        raw_dir=raw_dir,
        family=family,
        dialects=load_dialects(raw_dir),
        max_quarantine_share=max_quarantine_share,
        loaded_at=loaded_at or datetime.now(UTC).replace(tzinfo=None),
        gate=gate,
        on_verdict=on_verdict,
    )
    ensure_raw_tables(connection, family)
    files, misplaced = discover_files(raw_dir, family)
    result = FamilyLoad(family.name, files=list(misplaced))
    if gate is not None:
        result.files.extend(_judge_unjudged_files(connection, context))
    for outcome in misplaced:
        _log(connection, context, outcome)
    hashes_this_run: dict[str, str] = {}
    for source_system, path in files:
        relative = path.relative_to(raw_dir).as_posix()
        digest = file_sha256(path)
        earlier = hashes_this_run.get(digest) or _already_loaded_as(connection, family, digest)
        if earlier is not None:
            duplicate = FileOutcome(
                relative,
                source_system,
                "already_loaded",
                digest,
                message=f"{path}: already loaded"
                + ("" if earlier == relative else f" as {earlier} (same content)")
                + "; nothing added",
            )
            result.files.append(duplicate)
            if earlier != relative and not _logged(connection, duplicate):
                _log(connection, context, duplicate)  # a copy under another name: say so, once
            continue
        hashes_this_run[digest] = relative
        result.files.append(_load_file(connection, context, source_system, path, digest))
    result.table_rows = _count(connection, f"raw.{quote_identifier(family.name)}")
    result.quarantine_rows = scalar(
        connection, f"select count(*) from {QUARANTINE} where family = $family", {"family": family.name}
    )
    result.last_delivery_at = scalar(
        connection,
        f"select max(loaded_at) from {LOAD_LOG} where family = $family and status = 'loaded'",
        {"family": family.name},
    )
    return result


def _logged(connection: duckdb.DuckDBPyConnection, outcome: FileOutcome) -> bool:
    return (
        scalar(
            connection,
            f"select count(*) from {LOAD_LOG} where file_path = $file and file_hash = $hash and status = $status",
            {"file": outcome.relative_path, "hash": outcome.file_hash, "status": outcome.status},
        )
        > 0
    )


def _already_loaded_as(connection: duckdb.DuckDBPyConnection, family: Family, digest: str) -> str | None:
    row = connection.execute(
        f"select file_path from {LOAD_LOG} where family = $family and file_hash = $hash and status = 'loaded'",
        {"family": family.name, "hash": digest},
    ).fetchone()
    return None if row is None else row[0]


def _count(connection: duckdb.DuckDBPyConnection, table: str) -> int:
    return scalar(connection, f"select count(*) from {table}")


def _load_file(
    connection: duckdb.DuckDBPyConnection, context: LoadContext, source_system: str, path: Path, digest: str
) -> FileOutcome:
    outcome = FileOutcome(path.relative_to(context.raw_dir).as_posix(), source_system, "loaded", digest)
    dialect = dialect_for(context.dialects, source_system)
    try:
        # Read outside the transaction: rows of a temp table created inside one get provisional rowids.
        ordinal_sql, structural_rejects = _read_extract(connection, path, dialect)
        header_for = _map_headers(connection, context.family, dialect, path)
    except FileRejected as rejection:
        outcome.status, outcome.message = "rejected", str(rejection)
        _log(connection, context, outcome)
        return outcome
    try:
        # Parsed outside the transaction as well: a table dropped inside one keeps its memory until the commit
        # (parsing a file of 5 million rows beside its dropped extract took twice as long: issue 8).
        texts_query, query, parameters = _parse_query(context.family, header_for, dialect, ordinal_sql)
        connection.execute(texts_query)
        connection.execute("drop table _extract")  # no longer needed: free its memory before parsing
        connection.execute(query, parameters)
        connection.execute("drop table _texts")
    except BaseException:
        _drop_load_tables(connection)
        raise
    try:
        with transaction(connection):
            connection.execute(f"delete from {QUARANTINE} where file_hash = $hash", {"hash": digest})
            common = {
                "family": context.family.name,
                "source_system": source_system,
                "file": outcome.relative_path,
                "hash": digest,
                "at": context.loaded_at,
            }
            parsed_rows, bad_rows = one_row(
                connection, "select count(*), count(*) filter (where len(__errors) > 0) from _parsed"
            )
            outcome.rows_read = parsed_rows + structural_rejects
            outcome.rows_quarantined = bad_rows + structural_rejects
            _quarantine(connection, common, UNPARSED_ROWS)
            share = outcome.rows_quarantined / outcome.rows_read if outcome.rows_read else 0.0
            if share > context.max_quarantine_share:
                outcome.status = "rejected"
                outcome.message = (
                    f"{path}: {outcome.rows_quarantined} of {outcome.rows_read} rows ({share:.1%}) could not be "
                    f"parsed, above the {context.max_quarantine_share:.1%} threshold; no row loaded, "
                    f"see raw._quarantine where file_path = '{outcome.relative_path}'"
                )
            else:
                outcome.rows_loaded = parsed_rows - bad_rows
                _insert_rows(connection, context.family, common)
                if outcome.rows_quarantined:
                    outcome.message = (
                        f"{path}: {outcome.rows_quarantined} of {outcome.rows_read} rows quarantined "
                        f"({_quarantine_summary(connection)})"
                    )
                _judge(connection, context, outcome, common)
            _log(connection, context, outcome)
    finally:
        _drop_load_tables(connection)
    return outcome


def _drop_load_tables(connection: duckdb.DuckDBPyConnection) -> None:
    for table in ("_extract", "_texts", "_parsed"):
        connection.execute(f"drop table if exists {table}")


def _read_extract(
    connection: duckdb.DuckDBPyConnection, path: Path, dialect: SourceDialect
) -> tuple[str, int]:
    """Read the file as text into temp table _extract; return the SQL of each row's number, and how many
    lines the CSV reader could not split (already in temp table _extract_rejects)."""
    connection.execute("drop table if exists _extract_rejects")
    connection.execute("drop table if exists _extract_scans")
    try:
        if path.name.lower().endswith(".parquet"):
            connection.execute(
                "create or replace temp table _extract as "
                "select columns(column_name -> column_name != 'file_row_number')::varchar, file_row_number "
                "from read_parquet($path, file_row_number = true)",
                {"path": str(path)},
            )
            connection.execute(
                "create temp table _extract_rejects as select null::bigint as line, null::varchar as column_name, "
                "null::varchar as error_type, null::varchar as error_message, null::varchar as csv_line where false"
            )
            return "file_row_number + 1", 0
        _check_csv_layout(path, dialect)
        connection.execute(
            """
            create or replace temp table _extract as
            select * from read_csv(
                $path, header = true, all_varchar = true, delim = $delimiter, quote = $quote,
                encoding = $encoding, store_rejects = true,
                rejects_table = '_extract_rejects', rejects_scan = '_extract_scans'
            )
            """,
            {
                "path": str(path),
                "delimiter": dialect.delimiter,
                "quote": dialect.quote,
                "encoding": dialect.encoding,
            },
        )
    except duckdb.Error as error:
        raise FileRejected(
            f"{path}: cannot be read as {dialect.encoding} CSV/Parquet: {_first_line(error)}"
        ) from None
    rejected_lines = scalar(connection, "select count(distinct line) from _extract_rejects")
    if not rejected_lines:
        return "rowid + 1", 0
    # Rows the reader could not split are not in _extract, so rowid no longer counts records: the k-th kept
    # row is record k + (number of rejected records R_j, ranked j, with R_j - j < k).
    return (
        "rowid + 1 + (select count(*) from (select line - 1 - row_number() over (order by line) as kept_before "
        "from (select distinct line from _extract_rejects)) as rejected where rejected.kept_before < rowid + 1)",
        rejected_lines,
    )


def _check_csv_layout(path: Path, dialect: SourceDialect) -> None:
    """Reject, before DuckDB reads it, a CSV file that is empty, that is not in its source's declared encoding
    or delimiter (saying what it looks like and what to declare in sources.yml), or whose header names a column
    twice (DuckDB would rename the second one and its values would be lost)."""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    try:
        with opener(path, "rb") as handle:
            head = handle.read(HEAD_BYTES)
    except (OSError, EOFError) as error:
        raise FileRejected(f"{path}: cannot be read: {error}") from None
    source = path.parent.name
    if not head.removeprefix(codecs.BOM_UTF8).strip():
        raise FileRejected(f"{path}: the file is empty ({len(head)} bytes, no header): nothing to load")
    looks_utf16 = head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)) or b"\x00" in head[:1024]
    if looks_utf16 and dialect.encoding != "utf-16":
        raise FileRejected(
            f"{path}: looks UTF-16 encoded (byte-order mark or NUL bytes) but source {source!r} is read as "
            f"{dialect.encoding}; declare `encoding: utf-16` for {source} in sources.yml"
        )
    text = head.decode(dialect.encoding, errors="replace")
    header_line = text.lstrip("\ufeff").splitlines()[0] if text.strip() else ""
    if dialect.delimiter not in header_line:
        counts = {delimiter: header_line.count(delimiter) for delimiter in LIKELY_DELIMITERS}
        likely = max(counts, key=lambda delimiter: counts[delimiter])
        if counts[likely]:
            raise FileRejected(
                f"{path}: the header has no {dialect.delimiter!r} but {counts[likely]} {likely!r}: the file looks "
                f"{likely!r}-delimited; declare `delimiter: {likely!r}` for {source} in sources.yml"
            )
    header = next(csv.reader([header_line], delimiter=dialect.delimiter, quotechar=dialect.quote), [])
    seen: dict[str, int] = {}
    for position, name in enumerate(header, start=1):
        key = name.strip().lower()
        if key in seen:
            raise FileRejected(
                f"{path}: column {name.strip()!r} appears twice in the header (columns {seen[key]} and "
                f"{position}); each column must be named once"
            )
        seen[key] = position


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0]


def _map_headers(
    connection: duckdb.DuckDBPyConnection, family: Family, dialect: SourceDialect, path: Path
) -> dict[str, str]:
    """Canonical column -> the file's header for it. Rejects a file missing a required column."""
    headers = [
        row[0]
        for row in connection.execute("select column_name from (describe _extract)").fetchall()
        if row[0] != "file_row_number"
    ]
    header_for: dict[str, str] = {}
    for header in headers:
        canonical = dialect.canonical_name(family.name, header)
        if canonical not in family.column_names:
            continue
        if canonical in header_for:
            raise FileRejected(
                f"{path}: columns {header_for[canonical]!r} and {header!r} both map to {canonical!r}"
            )
        header_for[canonical] = header
    missing = [name for name in family.required_columns if name not in header_for]
    if missing:
        raise FileRejected(
            f"{path}: missing required column{'s' if len(missing) > 1 else ''} "
            f"{', '.join(repr(name) for name in missing)} for {family.name} "
            f"(columns found: {', '.join(headers) or 'none'})"
        )
    return header_for


def _insert_rows(connection: duckdb.DuckDBPyConnection, family: Family, common: dict[str, object]) -> None:
    columns = ", ".join(quote_identifier(name) for name in family.column_names)
    lineage = ", ".join(quote_identifier(name) for name, _ in LINEAGE_COLUMNS)
    connection.execute(
        f"""
        insert into raw.{quote_identifier(family.name)} ({columns}, {lineage})
        select {columns}, $source_system, $file, $hash, __row_number, $at
        from _parsed where len(__errors) = 0
        """,
        {key: common[key] for key in ("source_system", "file", "hash", "at")},
    )


def _quarantine(
    connection: duckdb.DuckDBPyConnection,
    common: dict[str, object],
    rows: str,
    parameters: dict[str, object] | None = None,
) -> None:
    """Add to the quarantine the rows of query `rows` (row_number, column_name, value, reason, raw_record) as
    rows of the file `common` describes: the one place that writes raw._quarantine."""
    connection.execute(
        f"""
        insert into {QUARANTINE} (family, source_system, file_path, file_hash, row_number, column_name, value,
            reason, raw_record, quarantined_at)
        select $family, $source_system, $file, $hash, row_number, column_name, value, reason, raw_record, $at
        from ({rows})
        """,
        {**common, **(parameters or {})},
    )


# The rows of the file being parsed that could not be parsed, and the lines the CSV reader could not split.
UNPARSED_ROWS = """
    select __row_number as row_number, error.column_name, error.value, error.reason, __record as raw_record
    from (select __row_number, __record, unnest(__errors) as error from _parsed where len(__errors) > 0)
    union all
    select line - 1, column_name, null, error_type || ': ' || error_message, csv_line
    from _extract_rejects
"""


def _failing_rows_query(family: Family) -> str:
    """The rows of raw.<family> from file $hash that the gate's failures name ($rows, $columns, $reasons, one
    entry per failure and row), with the failing column's value and the whole record as text (a decimal as
    the shortest text of its value: 12.5, not 12.5000)."""
    texts = {
        column.name: f"row.{quote_identifier(column.name)}"
        + ("::double" if column.type is ColumnType.DECIMAL else "")
        + "::varchar"
        for column in family.columns
    }
    record = ", ".join(f"{quote_identifier(name)} := {text}" for name, text in texts.items())
    values = " ".join(f"when {sql_literal(name)} then {text}" for name, text in texts.items())
    return f"""
        select failing.row_number, failing.column_name, case failing.column_name {values} end as value,
            failing.reason, to_json(struct_pack({record}))::varchar as raw_record
        from (select unnest($rows) as row_number, unnest($columns) as column_name, unnest($reasons) as reason)
            as failing
        join raw.{quote_identifier(family.name)} as row
            on row._file_hash = $hash and row._row_number = failing.row_number
    """


def _judge(
    connection: duckdb.DuckDBPyConnection,
    context: LoadContext,
    outcome: FileOutcome,
    common: dict[str, object],
) -> None:
    """With a gate, judge the file's rows in raw (inserted, not committed); a file that fails leaves raw,
    the rows the failures name go to the quarantine, and the outcome says so."""
    if context.gate is None:
        return
    outcome.verdict = verdict = context.gate.judge(connection, outcome.file_hash, outcome.relative_path)
    if context.on_verdict is not None:
        context.on_verdict(connection, verdict)
    if verdict.success:
        return
    failing = context.gate.failing_rows(verdict)
    _quarantine(
        connection,
        common,
        _failing_rows_query(context.family),
        {
            "rows": [row for row, _, _ in failing],
            "columns": [column for _, column, _ in failing],
            "reasons": [reason for _, _, reason in failing],
        },
    )
    connection.execute(
        f"delete from raw.{quote_identifier(context.family.name)} where _file_hash = $hash",
        {"hash": outcome.file_hash},
    )
    outcome.status = "failed_gate"
    outcome.rows_quarantined += len({row for row, _, _ in failing})
    outcome.rows_loaded = 0
    outcome.message = f"{outcome.relative_path}: rejected by the raw gate: " + "; ".join(
        failure.describe() for failure in verdict.failures
    )


def _judge_unjudged_files(connection: duckdb.DuckDBPyConnection, context: LoadContext) -> list[FileOutcome]:
    """Judge the files in raw without a verdict (loaded without a gate, or by a version that judged after the
    commit), each in a transaction: an `already_loaded` outcome with the verdict, or `failed_gate`; their
    ledger rows get the verdict."""
    unjudged = connection.execute(
        f"""
        select file_hash, any_value(file_path), any_value(source_system)
        from {LOAD_LOG}
        where family = $family and status = 'loaded' and gate_status is null
        group by file_hash order by 2
        """,
        {"family": context.family.name},
    ).fetchall()
    outcomes = []
    for file_hash, file_path, source_system in unjudged:
        outcome = FileOutcome(file_path, source_system, "already_loaded", file_hash)
        common = {
            "family": context.family.name,
            "source_system": source_system,
            "file": file_path,
            "hash": file_hash,
            "at": context.loaded_at,
        }
        with transaction(connection):
            _judge(connection, context, outcome, common)
            connection.execute(
                f"""
                update {LOAD_LOG} set gate_status = $gate, status = $status,
                    rows_loaded = case when $rejected then 0 else rows_loaded end,
                    rows_quarantined = rows_quarantined + $quarantined, message = coalesce($message, message)
                where file_hash = $hash and status = 'loaded'
                """,
                {
                    "gate": outcome.gate_status,
                    "status": LEDGER_STATUS.get(outcome.status, "loaded"),
                    "rejected": outcome.status == "failed_gate",
                    "quarantined": outcome.rows_quarantined,
                    "message": outcome.message or None,
                    "hash": file_hash,
                },
            )
        outcomes.append(outcome)
    return outcomes


def _quarantine_summary(connection: duckdb.DuckDBPyConnection) -> str:
    """A short account of the quarantined rows of the current file: where and why, no values."""
    rows = connection.execute(
        """
        select error.column_name, error.reason, count(*), min(__row_number)
        from (select __row_number, unnest(__errors) as error from _parsed where len(__errors) > 0)
        group by all order by min(__row_number)
        """
    ).fetchall()
    parts = [
        f"column {column!r} {reason}: {count} row(s), first row {first}"
        for column, reason, count, first in rows
    ]
    rejected = one_row(connection, "select count(distinct line), min(line) - 1 from _extract_rejects")
    if rejected[0]:
        parts.append(f"unreadable CSV line: {rejected[0]} row(s), first row {rejected[1]}")
    return "; ".join(parts)


def _log(connection: duckdb.DuckDBPyConnection, context: LoadContext, outcome: FileOutcome) -> None:
    connection.execute(
        f"insert into {LOAD_LOG} (file_hash, family, source_system, file_path, status, rows_read, rows_loaded, "
        "rows_quarantined, message, loaded_at, gate_status) values ($hash, $family, $source_system, $file, "
        "$status, $read, $loaded, $quarantined, $message, $at, $gate)",
        {
            "hash": outcome.file_hash,
            "family": context.family.name,
            "source_system": outcome.source_system,
            "file": outcome.relative_path,
            "status": LEDGER_STATUS.get(outcome.status, outcome.status),
            "gate": outcome.gate_status,
            "read": outcome.rows_read,
            "loaded": outcome.rows_loaded,
            "quarantined": outcome.rows_quarantined,
            "message": outcome.message,
            "at": context.loaded_at,
        },
    )
