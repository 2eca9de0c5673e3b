"""Data-quality gates (docs/delivery.md): Great Expectations 1.x suites, kept as `expectations/<name>.json` and reviewed
like code, validated on in-memory pandas batches (GX's SQL datasource returns empty results on DuckDB).
The only module that imports great_expectations, and only when a gate runs (not when the code location loads).

Results carry expectation types, columns and counts only, never cell values: they go to logs, Dagster
metadata and reports that people without access to personal data read.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dagster_project.lib.lazy import lazy_module
from dagster_project.paths import EXPECTATIONS_DIR, SEEDS_DIR

if TYPE_CHECKING:
    import great_expectations as gx
    import pandas as pd
else:
    pd = lazy_module("pandas")


@cache
def _great_expectations() -> None:
    """Import Great Expectations when a gate first needs it, not when the code location loads (2.8 s of every
    start-up, issue 21). GX fingerprints every pandas batch under HASH_THRESHOLD bytes (an MD5 over pandas' hash
    of every cell) for the batch's markers, which customer360 never reads: a quarter of a raw gate's time on
    millions of rows (issue 8). No batch is that small now; the validation itself is unchanged."""
    from great_expectations.execution_engine import pandas_execution_engine

    pandas_execution_engine.HASH_THRESHOLD = 0


class SuiteError(ValueError):
    """A suite file that cannot be used as written (unreadable, unknown expectation type, lost expectations)."""


@dataclass(frozen=True)
class ExpectationOutcome:
    """One expectation's verdict on a batch: its type, column, and on how many of how many rows it failed."""

    expectation: str
    column: str | None
    success: bool
    unexpected_count: int | None = None
    element_count: int | None = None
    observed_value: float | None = None  # table-level expectations only (e.g. a row count): never a cell
    unexpected_rows: tuple[int, ...] = ()  # the batch index of the failing rows, when asked for (row numbers)
    error: str | None = None  # why the expectation could not be evaluated (e.g. a column the batch lacks)

    def describe(self) -> str:
        where = f"{self.column}: " if self.column else ""
        if self.error:
            return f"{where}{self.expectation} could not be evaluated: {self.error}"
        if self.unexpected_count is not None:
            return f"{where}{self.expectation} failed on {self.unexpected_count} of {self.element_count} rows"
        if self.observed_value is not None:
            return f"{where}{self.expectation} failed (observed {self.observed_value:g})"
        return f"{where}{self.expectation} failed"


@dataclass(frozen=True)
class GateResult:
    """A suite's verdict on one table (or one file's rows of it)."""

    suite: str
    target: str
    rows: int
    outcomes: list[ExpectationOutcome] = field(default_factory=list)

    @property
    def success(self) -> bool:
        return all(outcome.success for outcome in self.outcomes)

    @property
    def failures(self) -> list[ExpectationOutcome]:
        return [outcome for outcome in self.outcomes if not outcome.success]

    def summary(self) -> str:
        return verdict_summary(self.as_dict())

    def as_dict(self) -> dict[str, Any]:
        return {
            "suite": self.suite,
            "target": self.target,
            "success": self.success,
            "rows": self.rows,
            "expectations": len(self.outcomes),
            "failures": [failure.describe() for failure in self.failures],
        }

    def as_markdown(self) -> str:
        lines = [
            f"### {self.target} — suite `{self.suite}`: {'passed' if self.success else '**FAILED**'}",
            "",
            f"{self.rows} rows, {len(self.outcomes)} expectations.",
            "",
            "| expectation | column | result | unexpected rows |",
            "|---|---|---|---|",
        ]
        for outcome in self.outcomes:
            unexpected = (
                ""
                if outcome.unexpected_count is None
                else f"{outcome.unexpected_count} of {outcome.element_count}"
            )
            lines.append(
                f"| {outcome.expectation} | {outcome.column or ''} | {'pass' if outcome.success else 'FAIL'} | {unexpected} |"
            )
        return "\n".join(lines) + "\n"


def verdict_summary(verdict: dict[str, Any]) -> str:
    """One line for a verdict (GateResult.as_dict(), or a row of raw._gate_log): counts, never values."""
    outcome = "passed" if verdict["success"] else "FAILED"
    head = (
        f"{verdict['target']}: suite {verdict['suite']} {outcome} "
        f"({verdict['expectations']} expectations, {verdict['rows']} rows)"
    )
    return "; ".join([head, *verdict["failures"]])


def suite_path(name: str, directory: Path = EXPECTATIONS_DIR) -> Path:
    return directory / f"{name}.json"


@cache
def seed_parameters() -> dict[str, list[str]]:
    """Values the mart suites refer to as {"$PARAMETER": name} that the dbt seeds define: the RFM segments
    (rfm_segments.csv) and the value tiers (service_tiers.csv), so a segment or tier added there is accepted
    by the gates without editing a suite."""
    with (SEEDS_DIR / "rfm_segments.csv").open(encoding="utf-8") as segments:
        rfm_segments = [row["segment"] for row in csv.DictReader(segments)]
    with (SEEDS_DIR / "service_tiers.csv").open(encoding="utf-8") as tiers:
        value_tiers = [row["value_tier"] for row in csv.DictReader(tiers)]
    return {"rfm_segments": rfm_segments, "value_tiers": value_tiers}


def mart_suites(directory: Path = EXPECTATIONS_DIR) -> list[str]:
    """The marts with a suite of their own: every suite but the raw families' (raw_*) and the segments'
    (segment*). A mart is gated by adding its suite."""
    return sorted(
        path.stem for path in directory.glob("*.json") if not path.stem.startswith(("raw_", "segment"))
    )


def load_suite(path: Path) -> gx.ExpectationSuite:
    """The suite in `path` (GX 1.x JSON: name, expectations [{type, kwargs, meta}], meta). Refused when the
    file cannot be read, names an unknown expectation type, or yields fewer expectations than it holds."""
    _great_expectations()
    import great_expectations as gx
    from great_expectations.exceptions import GreatExpectationsError

    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        declared = len(document["expectations"])
        suite = gx.ExpectationSuite(**document)
    except (OSError, ValueError, KeyError, TypeError, GreatExpectationsError) as error:
        raise SuiteError(f"{path}: not a usable expectation suite: {error}") from error
    if len(suite.expectations) != declared:
        raise SuiteError(f"{path}: {declared} expectations in the file but {len(suite.expectations)} loaded")
    return suite


CONDITION_WORDS = {"and", "or", "not", "in", "True", "False", "None"}  # of a pandas row_condition
QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")  # a string literal in a row_condition: a value, not a column


def referenced_columns(suite: gx.ExpectationSuite) -> list[str]:
    """The columns the suite's expectations name, in their arguments or a pandas row_condition (a batch need
    hold no others)."""
    columns: list[str] = []
    for expectation in suite.expectations:
        kwargs = expectation.configuration.kwargs
        condition = kwargs.get("row_condition") or ""
        # GX 1.x keeps a pandas condition as {"pass_through_filter": text, ...}
        if isinstance(condition, dict):
            condition = condition.get("pass_through_filter", "")
        for name in [
            kwargs.get("column"),
            kwargs.get("column_A"),
            kwargs.get("column_B"),
            *kwargs.get("column_list", []),
            *(
                word
                for word in re.findall(r"[A-Za-z_]\w*", QUOTED.sub(" ", str(condition)))
                if word not in CONDITION_WORDS
            ),
        ]:
            if name and name not in columns:
                columns.append(name)
    return columns


def is_row_wise(suite: gx.ExpectationSuite) -> bool:
    """True when every expectation judges each row on its own (no uniqueness, no row count), so validating a
    table in chunks gives the same verdict, counts and failing rows as validating it whole."""
    from great_expectations.expectations.expectation import (
        ColumnMapExpectation,
        ColumnPairMapExpectation,
        MulticolumnMapExpectation,
    )

    return all(
        isinstance(expectation, ColumnMapExpectation | ColumnPairMapExpectation | MulticolumnMapExpectation)
        and "unique" not in expectation.expectation_type
        for expectation in suite.expectations
    )


def combined(results: Iterable[GateResult], suite: gx.ExpectationSuite, target: str) -> GateResult:
    """One verdict from the verdicts of a row-wise suite on consecutive chunks of a table: an expectation
    fails if it failed on any chunk; counts add up, failing rows are the chunks' failing rows."""
    results = list(results)
    if not results:
        return GateResult(suite=suite.name, target=target, rows=0, outcomes=[])
    outcomes = []
    for chunk_outcomes in zip(*(result.outcomes for result in results), strict=True):
        first = chunk_outcomes[0]
        counts = [outcome.unexpected_count for outcome in chunk_outcomes]
        elements = [outcome.element_count for outcome in chunk_outcomes]
        outcomes.append(
            ExpectationOutcome(
                expectation=first.expectation,
                column=first.column,
                success=all(outcome.success for outcome in chunk_outcomes),
                unexpected_count=None if None in counts else sum(counts),
                element_count=None if None in elements else sum(elements),
                unexpected_rows=tuple(row for outcome in chunk_outcomes for row in outcome.unexpected_rows),
                error=next((outcome.error for outcome in chunk_outcomes if outcome.error), None),
            )
        )
    return GateResult(
        suite=suite.name, target=target, rows=sum(result.rows for result in results), outcomes=outcomes
    )


def _raised(exception_info: dict[str, Any], limit: int = 160) -> str | None:
    """The first line of the error an expectation raised, if any. GX gives either one exception_info or one
    per metric it tried to compute."""
    infos = [exception_info] if "raised_exception" in exception_info else list(exception_info.values())
    for info in infos:
        if isinstance(info, dict) and info.get("raised_exception"):
            lines = str(info.get("exception_message") or "error").strip().splitlines() or ["error"]
            return lines[0][:limit]
    return None


def _column_label(kwargs: dict[str, Any]) -> str | None:
    if kwargs.get("column"):
        return kwargs["column"]
    names = [kwargs.get("column_A"), kwargs.get("column_B"), *kwargs.get("column_list", [])]
    return ", ".join(name for name in names if name) or None


@cache
def _batch_definition() -> Any:
    _great_expectations()
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    context = gx.get_context(
        mode="ephemeral",
        project_config=DataContextConfig(
            analytics_enabled=False,
            progress_bars=ProgressBarsConfig(globally=False),
            store_backend_defaults=InMemoryStoreBackendDefaults(),
        ),
    )
    source = context.data_sources.add_pandas("in_memory")
    return source.add_dataframe_asset("table").add_batch_definition_whole_dataframe("whole_table")


def _vectorisable(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` with the column types GX compares vectorised: it checks `between` on int64 / float64 numbers and
    nanosecond datetimes in one operation, and on anything else one value at a time in Python (two thirds of a
    gate's time on a million rows: issue 8). DuckDB hands out int32 scores, nullable (masked) integers and
    microsecond timestamps: integers without missing values become int64, other numbers float64 (missing ones
    NaN, still missing), datetimes nanoseconds where every value fits (years 1677-2262; a column with a value
    beyond stays as it is: slower, still correct)."""
    converted = {}
    for column, dtype in frame.dtypes.items():
        values = frame[column]
        if pd.api.types.is_datetime64_dtype(dtype) and not pd.api.types.is_datetime64_ns_dtype(dtype):
            if values.isna().all() or (pd.Timestamp.min <= values.min() and values.max() <= pd.Timestamp.max):
                converted[column] = values.astype("datetime64[ns]")
        elif pd.api.types.is_numeric_dtype(dtype) and not pd.api.types.is_bool_dtype(dtype):
            if dtype in ("int64", "float64"):
                continue
            whole = pd.api.types.is_integer_dtype(dtype) and not values.isna().any()
            converted[column] = values.to_numpy(
                dtype="int64" if whole else "float64", na_value=None if whole else float("nan")
            )
    return frame.assign(**converted) if converted else frame


def validate(
    frame: pd.DataFrame,
    suite: gx.ExpectationSuite,
    target: str,
    parameters: dict[str, Any] | None = None,
    failing_rows: bool = False,
) -> GateResult:
    """Run every expectation of `suite` on `frame`; `parameters` fill the suite's {"$PARAMETER": name} values,
    besides those the seeds define (seed_parameters).
    With `failing_rows`, each failed expectation also names the index values (the frame's named index, e.g.
    row numbers) of the rows it failed on. An expectation that raised (a column the batch lacks) fails."""
    # The validator Batch.validate builds, built directly: Batch.validate fetches the batch again, and GX hashes
    # a pandas batch on every fetch (a third of a raw gate's time on millions of rows).
    from great_expectations.validator.v1_validator import Validator

    parameters = {**seed_parameters(), **(parameters or {})}
    validator = Validator(
        _batch_definition(),
        result_format="COMPLETE" if failing_rows else "BASIC",
        batch_parameters={"dataframe": _vectorisable(frame)},
    )
    result = validator.validate_expectation_suite(suite, expectation_parameters=parameters)
    outcomes = []
    for expectation_result in result.results:
        configuration = expectation_result.expectation_config
        assert configuration is not None  # a result of validating a suite names its expectation
        details = expectation_result.result or {}
        error = _raised(expectation_result.exception_info or {})
        observed = details.get("observed_value")
        outcomes.append(
            ExpectationOutcome(
                expectation=configuration.type,
                column=_column_label(configuration.kwargs),
                success=bool(expectation_result.success),
                unexpected_count=details.get("unexpected_count"),
                element_count=details.get("element_count"),
                observed_value=(
                    float(observed)
                    if isinstance(observed, int | float) and configuration.kwargs.get("column") is None
                    else None
                ),
                unexpected_rows=tuple(
                    int(item[frame.index.name]) for item in details.get("unexpected_index_list") or []
                )
                if failing_rows and not expectation_result.success
                else (),
                error=error,
            )
        )
    return GateResult(suite=suite.name, target=target, rows=len(frame), outcomes=outcomes)
