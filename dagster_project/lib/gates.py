"""The data-quality gates on warehouse tables (docs/delivery.md): batches read from DuckDB, validated with the suites
of lib/expectations.py, verdicts logged in raw._gate_log and written as a Markdown report.

Raw gate (RawGate): each file's rows are validated by ingest before the file's commit, and a file that fails
is rejected there like any rejected file (lib/ingest.py is the one writer of raw, the quarantine and the
ledger): none of its rows load, the rows each failed expectation names go to raw._quarantine (file, row,
column, the expectation as reason, the whole record), the ledger says why, and the file is tried again (and
fails again) on every run until it is corrected or removed. The raw gate asset check reports those verdicts.
"""

from __future__ import annotations

import csv
import json
import re
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb

from dagster_project.lib import dbt_builds
from dagster_project.lib.expectations import (
    GateResult,
    combined,
    is_row_wise,
    load_suite,
    referenced_columns,
    suite_path,
    validate,
)
from dagster_project.lib.lazy import lazy_module
from dagster_project.lib.settings import Settings
from dagster_project.lib.warehouse import has_table
from dagster_project.paths import SEEDS_DIR

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = lazy_module("pandas")

GATE_LOG = "raw._gate_log"
VOCABULARY_SEED = SEEDS_DIR / "vocabulary.csv"
# A gated table may shrink to half or double (give or take ROW_COUNT_SLACK rows) since the previous passed run.
ROW_COUNT_BAND = (0.5, 2.0)
ROW_COUNT_SLACK = 10
# Rows per batch of a row-wise raw suite (bounded memory on files of millions of rows); DuckDB hands results
# out in vectors of DUCKDB_VECTOR_ROWS.
RAW_GATE_CHUNK_ROWS = 500_000
DUCKDB_VECTOR_ROWS = 2048


def vocabulary_key(code: object) -> str | None:
    """A delivered code as the lookup key of the vocabulary seed: accents stripped, lower case, runs of other
    characters as one underscore. The same rule as dbt's `vocabulary_key` macro (a test holds them equal)."""
    if code is None or (isinstance(code, float) and pd.isna(code)):
        return None
    text = unicodedata.normalize("NFKD", str(code).strip().lower())
    text = "".join(character for character in text if not unicodedata.combining(character))
    return re.sub(r"[^a-z0-9]+", "_", text).strip("_")


def vocabulary_codes(seed: Path = VOCABULARY_SEED) -> dict[str, list[str]]:
    """Known delivered codes per vocabulary domain, as suite parameters `<domain>_codes`."""
    codes: dict[str, list[str]] = {}
    with seed.open(encoding="utf-8") as rows:
        for row in csv.DictReader(rows):
            codes.setdefault(f"{row['domain']}_codes", []).append(row["source_value"])
    return codes


def canonical_values(domain: str, seed: Path = VOCABULARY_SEED) -> dict[str, str]:
    """A vocabulary domain's lookup: delivered code's key (vocabulary_key) -> canonical value, as staging maps."""
    with seed.open(encoding="utf-8") as rows:
        return {
            vocabulary_key(row["source_value"]) or "": row["canonical_value"]
            for row in csv.DictReader(rows)
            if row["domain"] == domain
        }


def raw_parameters(settings: Settings, now: datetime) -> dict[str, Any]:
    """Values the raw suites refer to as {"$PARAMETER": name}. Events may not be later than the run's clock
    (a day of slack for time zones): as_of may be set in the past on purpose, so it is no bound."""
    return {
        "latest_event_time": pd.Timestamp(now + timedelta(days=1)),
        "today": pd.Timestamp(now.date()),
        "earliest_birth_date": pd.Timestamp("1900-01-01"),
        "max_order_amount": settings.max_order_amount,
        "min_order_amount": -settings.max_order_amount,
        **vocabulary_codes(),
    }


def ensure_gate_tables(connection: duckdb.DuckDBPyConnection) -> None:
    connection.execute("create schema if not exists raw")
    connection.execute(
        f"""
        create table if not exists {GATE_LOG} (
            run_id varchar, suite varchar, target varchar, success boolean, rows bigint,
            expectations integer, failures json, checked_at timestamp
        )
        """
    )


def record(
    connection: duckdb.DuckDBPyConnection, run_id: str, results: list[GateResult], at: datetime
) -> None:
    """Log every verdict (counts and expectation names only)."""
    for result in results:
        summary = result.as_dict()
        connection.execute(
            f"insert into {GATE_LOG} values ($run, $suite, $target, $success, $rows, $expectations, $failures, $at)",
            {
                "run": run_id,
                "suite": result.suite,
                "target": result.target,
                "success": result.success,
                "rows": result.rows,
                "expectations": summary["expectations"],
                "failures": json.dumps(summary["failures"]),
                "at": at,
            },
        )


def logged_verdicts(connection: duckdb.DuckDBPyConnection, run_id: str, suite: str) -> list[dict[str, Any]]:
    """The verdicts run `run_id` logged with `suite`, in order, as GateResult.as_dict() gives them."""
    ensure_gate_tables(connection)
    rows = connection.execute(
        f"select suite, target, success, rows, expectations, failures from {GATE_LOG} "
        "where run_id = $run and suite = $suite order by checked_at, target",
        {"run": run_id, "suite": suite},
    ).fetchall()
    fields = ("suite", "target", "success", "rows", "expectations", "failures")
    return [dict(zip(fields, (*row[:5], json.loads(row[5])), strict=True)) for row in rows]


def write_report(directory: Path, run_id: str, results: list[GateResult], at: datetime) -> Path:
    """Append the verdicts to the run's Markdown report, <directory>/<run_id>.md."""
    directory.mkdir(parents=True, exist_ok=True)
    report = directory / f"{run_id}.md"
    if not report.exists():
        report.write_text(f"# Data-quality gates, run {run_id}\n\nStarted {at:%Y-%m-%d %H:%M:%S} UTC.\n\n")
    with report.open("a", encoding="utf-8") as out:
        for result in results:
            out.write(result.as_markdown() + "\n")
    return report


# ------------------------------------------------------------------------------------------------ raw


def with_vocabulary_codes(frame: pd.DataFrame, vocabulary: dict[str, str]) -> pd.DataFrame:
    """Add `<column>_code`, the vocabulary key of each delivered code, for the suite's vocabulary columns
    (computed once per distinct code)."""
    for column in vocabulary:
        if column in frame:
            keys = {code: vocabulary_key(code) for code in frame[column].dropna().unique()}
            frame[f"{column}_code"] = frame[column].map(keys)
        else:
            frame[f"{column}_code"] = None
    return frame


@dataclass(frozen=True)
class RawGate:
    """Suite raw_<family> on one file's rows of raw.<family>. Ingest (lib/ingest.py) calls `judge` after
    inserting a file's rows and before committing them, and rejects the file when it fails; this module only
    judges. A batch holds only the columns the suite reads; a row-wise suite (all raw suites) runs on chunks of
    RAW_GATE_CHUNK_ROWS rows, so memory does not grow with the file."""

    family: str
    suite: Any  # gx.ExpectationSuite
    parameters: dict[str, Any]

    @classmethod
    def for_family(cls, family: str, parameters: dict[str, Any]) -> RawGate:
        return cls(family, load_suite(suite_path(f"raw_{family}")), parameters)

    @property
    def vocabulary(self) -> dict[str, str]:
        return dict(self.suite.meta.get("vocabulary", {}))

    def judge(self, connection: duckdb.DuckDBPyConnection, file_hash: str, file_path: str) -> GateResult:
        """The suite's verdict on the rows of raw.<family> from the file `file_hash`, read on `connection`
        itself: inside ingest's transaction, where they are not yet committed."""
        table_columns = {row[0] for row in connection.execute(f"describe raw.{self.family}").fetchall()}
        wanted = [*referenced_columns(self.suite), *self.vocabulary]
        selected = ", ".join(
            f'"{column}"' for column in dict.fromkeys(["_row_number", *wanted]) if column in table_columns
        )
        target = f"raw.{self.family} {file_path}"
        batches = _batches(
            connection,
            f"select {selected} from raw.{self.family} where _file_hash = $hash",
            {"hash": file_hash},
            RAW_GATE_CHUNK_ROWS if is_row_wise(self.suite) else None,
        )
        return combined(
            (
                validate(
                    with_vocabulary_codes(batch.set_index("_row_number"), self.vocabulary),
                    self.suite,
                    target,
                    self.parameters,
                    failing_rows=True,
                )
                for batch in batches
            ),
            self.suite,
            target,
        )

    def failing_rows(self, result: GateResult) -> list[tuple[int, str | None, str]]:
        """(row number, column, reason) of each row each failed expectation names, the column as delivered
        (a vocabulary column's code key `<column>_code` is judged, `<column>` was delivered)."""
        delivered = {f"{column}_code": column for column in self.vocabulary}
        return [
            (
                int(row),
                delivered.get(failure.column, failure.column) if failure.column else None,
                f"failed expectation {failure.expectation} (suite {result.suite})",
            )
            for failure in result.failures
            for row in failure.unexpected_rows
        ]


def _batches(
    connection: duckdb.DuckDBPyConnection, query: str, parameters: dict[str, Any], chunk_rows: int | None
) -> Iterator[pd.DataFrame]:
    """The query's result as pandas frames of at most `chunk_rows` rows (one frame when None); at least one
    frame, empty if the result is. Read on `connection` itself, so that it sees the connection's open
    transaction (nothing else may run on it until the frames are read)."""
    connection.execute(query, parameters)
    if chunk_rows is None:
        yield connection.df()
        return
    vectors = max(chunk_rows // DUCKDB_VECTOR_ROWS, 1)
    first = True
    while True:
        batch = connection.fetch_df_chunk(vectors)
        if batch.empty and not first:
            return
        yield batch
        first = False


# ---------------------------------------------------------------------------------------------- marts


def row_count_band(
    connection: duckdb.DuckDBPyConnection, target: str, dbt_code: str | None = None
) -> dict[str, int | None]:
    """Suite parameters `min_rows` / `max_rows` around the rows of the last passed gate on `target` that had
    rows (no bound on a first run; an empty table bounds nothing: a band around 0 would refuse any growth).
    With `dbt_code` (lib/dbt_builds.fingerprint: the dbt code and settings), only gates of runs that built that
    same code count: a new definition of a mart or segment (an upgrade, a changed setting) may change its size,
    and its first run sets the band anew."""
    ensure_gate_tables(connection)
    same_code, parameters = "", {"target": target}
    if dbt_code is not None:
        if not has_table(connection, "raw", dbt_builds.BUILD_LOG.removeprefix("raw.")):
            return {"min_rows": None, "max_rows": None}
        same_code = f"and run_id in (select run_id from {dbt_builds.BUILD_LOG} where fingerprint = $code)"
        parameters["code"] = dbt_code
    row = connection.execute(
        f"select rows from {GATE_LOG} where target = $target and success and rows > 0 {same_code} "
        "order by checked_at desc limit 1",
        parameters,
    ).fetchone()
    if row is None:
        return {"min_rows": None, "max_rows": None}
    low, high = ROW_COUNT_BAND
    return {
        "min_rows": max(int(row[0] * low) - ROW_COUNT_SLACK, 0),
        "max_rows": int(row[0] * high) + ROW_COUNT_SLACK,
    }


def clv_refusal(connection: duckdb.DuckDBPyConnection) -> str | None:
    """Why this run's CLV was not computed (marts.clv_status, written by the CLV step), or None if it was:
    then there is no CLV to gate, and what leaves the warehouse goes out with the CLV columns null."""
    exists = has_table(connection, "marts", "clv_status")
    row = connection.execute("select fitted, clv_status from marts.clv_status").fetchone() if exists else None
    if row is None:
        return "the CLV step has not run"
    return None if row[0] else "no CLV this run: " + row[1].removeprefix("not fitted: ")


def run_verdicts(connection: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, bool]:
    """Every gate target of a run and whether it passed."""
    ensure_gate_tables(connection)
    rows = connection.execute(
        f"select target, bool_and(success) from {GATE_LOG} where run_id = $run group by target order by target",
        {"run": run_id},
    ).fetchall()
    return dict(rows)


def gate_table(
    connection: duckdb.DuckDBPyConnection, relation: str, suite_name: str, dbt_code: str | None = None
) -> GateResult:
    """Validate `relation` (schema.table) with a suite, reading only the columns it names; the suite may refer
    to the row-count band `min_rows` / `max_rows`."""
    suite = load_suite(suite_path(suite_name))
    columns = referenced_columns(suite)
    selected = ", ".join(f'"{column}"' for column in columns) if columns else "1 as _row"
    frame = connection.execute(f"select {selected} from {relation}").df()
    return validate(frame, suite, target=relation, parameters=row_count_band(connection, relation, dbt_code))
