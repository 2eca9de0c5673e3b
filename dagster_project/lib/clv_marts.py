"""The CLV marts (docs/metrics.md) from intermediate.int_clv_inputs: the production fit and every purchasing
customer's score, the backtest on the calibration cut, the fits' log and the run's status, built as frames and
written in one transaction. Plain values in, no Dagster: the `clv` asset (defs/clv.py) calls these."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import duckdb

from dagster_project.lib.clv import (
    Backtest,
    ClvFitError,
    ModelFit,
    backtest,
    fit_spend,
    fit_transactions,
    frequency_monetary_correlation,
    repeat_buyers,
    require_enough_data,
    score_customers,
)
from dagster_project.lib.lazy import lazy_module
from dagster_project.lib.warehouse import scalar, write_python_marts

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = lazy_module("pandas")

TABLES = {
    "clv_model_fits": """
        fit_id varchar primary key, fit_kind varchar not null, model varchar not null, parameters json not null,
        log_likelihood double, n_customers integer not null, n_unique_rows integer not null,
        converged_at_tolerance double not null,
        time_unit varchar not null, calibration_end date not null, as_of date not null,
        fitted_at timestamp not null""",
    "customer_clv": """
        customer_id bigint primary key, p_alive double not null, expected_purchases double not null,
        expected_avg_spend double not null, margin_rate double not null, clv double not null,
        clv_horizon integer not null, time_unit varchar not null, as_of date not null,
        fit_id varchar not null""",
    "clv_backtest": """
        fit_id varchar primary key, model varchar not null, time_unit varchar not null,
        calibration_end date not null, holdout_end date not null, holdout_units double not null,
        customers integer not null, predicted_total double not null, actual_total integer not null,
        mae double not null, created_at timestamp not null""",
    "clv_backtest_by_frequency": """
        fit_id varchar not null, calibration_frequency integer not null, customers integer not null,
        predicted_purchases double not null, actual_purchases integer not null,
        primary key (fit_id, calibration_frequency)""",
    "clv_status": """
        as_of date, fitted boolean not null, clv_status varchar not null, model varchar not null,
        repeat_buyers integer not null, min_repeat_buyers integer not null, backtest varchar not null,
        checked_at timestamp not null""",
}
REPLACED = ("customer_clv", "clv_status")  # the others are appended to


@dataclass(frozen=True)
class ClvOptions:
    """The settings a CLV run uses (C360_CLV_*, C360_DISCOUNT_RATE)."""

    model: str
    time_unit: str
    holdout: int
    horizon: int
    discount_rate: float
    min_repeat_buyers: int


@dataclass
class ClvRun:
    """What one run computed: a frame per table of TABLES, metadata per table, and why the CLV (`refusal`) or
    the backtest (`backtest_refusal`) was not made, if so."""

    frames: dict[str, pd.DataFrame] = field(default_factory=lambda: {name: pd.DataFrame() for name in TABLES})
    metadata: dict[str, dict[str, Any]] = field(default_factory=lambda: {name: {} for name in TABLES})
    refusal: str | None = None
    backtest_refusal: str | None = None


def read_inputs(connection: duckdb.DuckDBPyConnection, cut: str) -> pd.DataFrame:
    """One cut (production or calibration) of intermediate.int_clv_inputs, as lifetimes names the columns."""
    return connection.execute(
        """
        select customer_id, period_end, frequency, recency, t as "T", monetary_value, margin_rate,
            holdout_purchase_days
        from intermediate.int_clv_inputs
        where cut = $cut
        order by customer_id
        """,
        {"cut": cut},
    ).df()


def _fit_row(
    fit: ModelFit, kind: str, time_unit: str, calibration_end: date, as_of: date, at: datetime
) -> dict:
    return {
        "fit_id": uuid.uuid4().hex,
        "fit_kind": kind,
        "model": fit.model,
        "parameters": json.dumps(fit.parameters),
        "log_likelihood": fit.log_likelihood,
        "n_customers": fit.n_customers,
        "n_unique_rows": fit.n_unique_rows,
        "converged_at_tolerance": fit.tolerance,
        "time_unit": time_unit,
        "calibration_end": calibration_end,
        "as_of": as_of,
        "fitted_at": at,
    }


def _production(
    production: pd.DataFrame, options: ClvOptions, at: datetime
) -> tuple[list[dict], pd.DataFrame, dict[str, Any]]:
    import dagster_project.lib.lifetimes_fitters  # noqa: F401  (imported before the clock: fit_seconds times the fits)

    started = time.perf_counter()
    transactions, transactions_fitter = fit_transactions(production, options.model)
    spend, spend_fitter = fit_spend(production)
    fitted = time.perf_counter()
    as_of = production["period_end"].iloc[0].date()
    fits = [_fit_row(fit, "production", options.time_unit, as_of, as_of, at) for fit in (transactions, spend)]
    scores = score_customers(
        production,
        transactions_fitter,
        spend_fitter,
        options.horizon,
        options.discount_rate,
        options.time_unit,
    )
    scores = scores.assign(
        margin_rate=production["margin_rate"].to_numpy(),
        clv_horizon=options.horizon,
        time_unit=options.time_unit,
        as_of=as_of,
        fit_id=fits[0]["fit_id"],
    )
    metadata = {
        "fit_seconds": round(fitted - started, 3),
        "score_seconds": round(time.perf_counter() - fitted, 3),
        "model": options.model,
        "parameters": {fit.model: fit.parameters for fit in (transactions, spend)},
        "log_likelihood": transactions.log_likelihood,
        "customers": transactions.n_customers,
        "unique_rows_fitted": transactions.n_unique_rows,
        "repeat_buyers_in_spend_fit": spend.n_customers,
        "frequency_monetary_correlation": frequency_monetary_correlation(production),
        "mean_p_alive": float(scores["p_alive"].mean()),
        "total_clv": float(scores["clv"].sum()),
    }
    return fits, scores, metadata


def _backtest_frames(
    result: Backtest, time_unit: str, calibration_end: date, as_of: date, at: datetime
) -> tuple[list[dict], pd.DataFrame, pd.DataFrame]:
    fits = [
        _fit_row(fit, "backtest", time_unit, calibration_end, as_of, at)
        for fit in (result.transactions, result.spend)
    ]
    fit_id = fits[0]["fit_id"]
    summary = pd.DataFrame(
        [
            {
                "fit_id": fit_id,
                "model": result.transactions.model,
                "time_unit": time_unit,
                "calibration_end": calibration_end,
                "holdout_end": as_of,
                "holdout_units": result.holdout_units,
                "customers": result.transactions.n_customers,
                "predicted_total": result.predicted_total,
                "actual_total": result.actual_total,
                "mae": result.mean_absolute_error,
                "created_at": at,
            }
        ]
    )
    return fits, summary, result.by_frequency.assign(fit_id=fit_id)


def _run_backtest(
    calibration: pd.DataFrame, options: ClvOptions, as_of: date, at: datetime, run: ClvRun
) -> None:
    """Fit on the calibration cut and forecast the holdout, adding its rows to the run (a backtest that
    cannot be made is noted, not raised: the production fit passed its own checks)."""
    try:
        require_enough_data(calibration, options.min_repeat_buyers, "calibration")
        calibration_end = calibration["period_end"].iloc[0].date()
        result = backtest(calibration, options.model, options.holdout)
    except ClvFitError as error:
        run.backtest_refusal = str(error)
        return
    fits, run.frames["clv_backtest"], run.frames["clv_backtest_by_frequency"] = _backtest_frames(
        result, options.time_unit, calibration_end, as_of, at
    )
    run.frames["clv_model_fits"] = pd.concat([run.frames["clv_model_fits"], pd.DataFrame(fits)])
    run.metadata["clv_backtest"] = {
        "calibration_end": str(calibration_end),
        "parameters": {fit.model: fit.parameters for fit in (result.transactions, result.spend)},
        "predicted_total": result.predicted_total,
        "actual_total": result.actual_total,
        "mae": result.mean_absolute_error,
    }


def compute_clv(connection: duckdb.DuckDBPyConnection, options: ClvOptions, at: datetime) -> ClvRun:
    """Fit the repeat-purchase model and Gamma-Gamma on the production cut and score every purchasing
    customer; backtest on the calibration cut; the status row. A fit that cannot be made leaves customer_clv
    empty and says why (ClvRun.refusal, clv_status)."""
    production = read_inputs(connection, "production")
    calibration = read_inputs(connection, "calibration")
    as_of = scalar(connection, "select max(as_of) from marts.observation_window")
    run = ClvRun()
    try:
        require_enough_data(production, options.min_repeat_buyers, "production")
        fits, run.frames["customer_clv"], run.metadata["customer_clv"] = _production(production, options, at)
        run.frames["clv_model_fits"] = pd.DataFrame(fits)
    except ClvFitError as error:
        run.refusal = str(error)
        run.metadata["customer_clv"] = {
            "clv_status": f"not fitted: {run.refusal}",
            "most_growable": "left empty: no CLV this run",
        }
    if run.refusal is None:
        _run_backtest(calibration, options, as_of, at, run)
    backtest_outcome = (
        "not made: no CLV this run"
        if run.refusal
        else ("made" if run.backtest_refusal is None else f"not made: {run.backtest_refusal}")
    )
    status = "fitted" if run.refusal is None else f"not fitted: {run.refusal}"
    run.frames["clv_status"] = pd.DataFrame(
        [
            {
                "as_of": as_of,
                "fitted": run.refusal is None,
                "clv_status": status,
                "model": options.model,
                "repeat_buyers": repeat_buyers(production),
                "min_repeat_buyers": options.min_repeat_buyers,
                "backtest": backtest_outcome,
                "checked_at": at,
            }
        ]
    )
    run.metadata["clv_status"] = {"clv_status": status, "model": options.model, "backtest": backtest_outcome}
    return run


def write_clv(connection: duckdb.DuckDBPyConnection, run: ClvRun) -> dict[str, int]:
    """Write the run's tables in one transaction; the rows each table holds after it."""
    write_python_marts(connection, TABLES, REPLACED, run.frames)
    return {name: scalar(connection, f"select count(*) from marts.{name}") for name in TABLES}
