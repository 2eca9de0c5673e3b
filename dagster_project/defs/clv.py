"""CLV assets (docs/metrics.md): the lifetimes models fitted on intermediate.int_clv_inputs, every purchasing
customer scored, and a backtest on the calibration cut. Writes marts.clv_model_fits, marts.customer_clv,
marts.clv_backtest, marts.clv_backtest_by_frequency and marts.clv_status in one transaction.

A fit that cannot be made (too few repeat buyers, no convergence, a degenerate result) writes no CLV, but does
not stop the run: marts.clv_status says why, customer_clv is empty for this as_of, and what reads it (value
tiers, customer_360, segments, exports, the serving file) is built with the CLV columns null."""

import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime

import dagster as dg
import duckdb
import pandas as pd

from dagster_project.defs.resources import WAREHOUSE_POOL, SettingsResource
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
from dagster_project.lib.settings import Settings
from dagster_project.lib.warehouse import connect, write_python_marts

INPUTS = dg.AssetKey(["intermediate", "int_clv_inputs"])

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

DESCRIPTIONS = {
    "clv_model_fits": "One row per model fit (fit_kind backtest or production; model bgnbd, paretonbd, mbgnbd "
    "or gammagamma): lifetimes' parameters as JSON, total log-likelihood, customers and unique rows fitted, "
    "the optimiser's convergence tolerance, time unit and data window. Appended every run.",
    "customer_clv": "One row per customer with a purchase to as_of: p_alive, expected purchases and average "
    "spend over clv_horizon units, margin rate and the discounted CLV as profit (>= 0). Replaced every run.",
    "clv_backtest": "One row per backtest: the model fitted on purchases to calibration_end predicts each "
    "customer's purchase days to holdout_end; predicted vs actual totals and mean absolute error. Appended.",
    "clv_backtest_by_frequency": "One row per backtest and calibration frequency (7 = seven or more repeat "
    "purchase days): customers, predicted and actual holdout purchase days. Appended.",
    "clv_status": "One row: whether this run's CLV was computed (fitted) and, if not, why (clv_status, e.g. "
    "'not fitted: 12 repeat buyers in the production cut, 30 needed'); the model, repeat buyers found and "
    "needed, and the backtest's outcome. Replaced every run.",
}


def _specs() -> list[dg.AssetSpec]:
    return [
        dg.AssetSpec(
            ["marts", name],
            deps=[INPUTS],
            description=description,
            group_name="marts",
            kinds={"python", "duckdb"},
        )
        for name, description in DESCRIPTIONS.items()
    ]


def _read_inputs(connection: duckdb.DuckDBPyConnection, cut: str) -> pd.DataFrame:
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


def _fit_row(fit: ModelFit, kind: str, config: Settings, calibration_end: date, as_of: date, at: datetime):
    return {
        "fit_id": uuid.uuid4().hex,
        "fit_kind": kind,
        "model": fit.model,
        "parameters": json.dumps(fit.parameters),
        "log_likelihood": fit.log_likelihood,
        "n_customers": fit.n_customers,
        "n_unique_rows": fit.n_unique_rows,
        "converged_at_tolerance": fit.tolerance,
        "time_unit": config.clv_time_unit,
        "calibration_end": calibration_end,
        "as_of": as_of,
        "fitted_at": at,
    }


def _production(
    production: pd.DataFrame, config: Settings, at: datetime
) -> tuple[list[dict], pd.DataFrame, dict[str, object]]:
    started = time.perf_counter()
    transactions, transactions_fitter = fit_transactions(production, config.clv_model)
    spend, spend_fitter = fit_spend(production)
    fitted = time.perf_counter()
    as_of = production["period_end"].iloc[0].date()
    fits = [_fit_row(fit, "production", config, as_of, as_of, at) for fit in (transactions, spend)]
    scores = score_customers(
        production,
        transactions_fitter,
        spend_fitter,
        config.clv_horizon,
        config.discount_rate,
        config.clv_time_unit,
    )
    scores = scores.assign(
        margin_rate=production["margin_rate"].to_numpy(),
        clv_horizon=config.clv_horizon,
        time_unit=config.clv_time_unit,
        as_of=as_of,
        fit_id=fits[0]["fit_id"],
    )
    metadata = {
        "fit_seconds": round(fitted - started, 3),
        "score_seconds": round(time.perf_counter() - fitted, 3),
        "model": config.clv_model,
        "parameters": dg.MetadataValue.json({fit.model: fit.parameters for fit in (transactions, spend)}),
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
    result: Backtest, config: Settings, calibration_end: date, as_of: date, at: datetime
) -> tuple[list[dict], pd.DataFrame, pd.DataFrame]:
    fits = [
        _fit_row(fit, "backtest", config, calibration_end, as_of, at)
        for fit in (result.transactions, result.spend)
    ]
    fit_id = fits[0]["fit_id"]
    summary = pd.DataFrame(
        [
            {
                "fit_id": fit_id,
                "model": result.transactions.model,
                "time_unit": config.clv_time_unit,
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


def _status(
    as_of: date | None,
    config: Settings,
    repeat_buyers_found: int,
    refusal: str | None,
    backtest: str,
    at: datetime,
) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "as_of": as_of,
                "fitted": refusal is None,
                "clv_status": "fitted" if refusal is None else f"not fitted: {refusal}",
                "model": config.clv_model,
                "repeat_buyers": repeat_buyers_found,
                "min_repeat_buyers": config.clv_min_repeat_buyers,
                "backtest": backtest,
                "checked_at": at,
            }
        ]
    )


@dg.multi_asset(specs=_specs(), pool=WAREHOUSE_POOL, can_subset=False)
def clv(context: dg.AssetExecutionContext, settings: SettingsResource) -> Iterator[dg.MaterializeResult]:
    """Fit the repeat-purchase model (C360_CLV_MODEL) and Gamma-Gamma on the production cut, score every
    purchasing customer over C360_CLV_HORIZON units, discounted at C360_DISCOUNT_RATE; fit the same on the
    calibration cut and compare its holdout forecast with what happened. A fit that cannot be made writes no
    CLV and says why in marts.clv_status; the run goes on without CLV."""
    config = settings.get()
    at = datetime.now(UTC).replace(tzinfo=None)
    with connect(config.warehouse, memory_limit=config.duckdb_memory_limit) as connection:
        production = _read_inputs(connection, "production")
        calibration = _read_inputs(connection, "calibration")
        as_of = connection.execute("select max(as_of) from marts.observation_window").fetchone()[0]
        metadata: dict[str, dict[str, object]] = {name: {} for name in TABLES}
        frames = {name: pd.DataFrame() for name in TABLES}
        refusal = None
        try:
            require_enough_data(production, config.clv_min_repeat_buyers, "production")
            fits, frames["customer_clv"], metadata["customer_clv"] = _production(production, config, at)
            frames["clv_model_fits"] = pd.DataFrame(fits)
        except ClvFitError as error:
            refusal = str(error)
            context.log.warning(
                f"CLV not computed this run: {error}. customer_clv is empty, the CLV columns of customer_value "
                "and customer_360 are null and the most_growable tier is left empty; everything else is built."
            )
            metadata["customer_clv"] = {
                "clv_status": f"not fitted: {refusal}",
                "most_growable": "left empty: no CLV this run",
            }
        backtest_outcome = (
            "not made: no CLV this run"
            if refusal
            else _run_backtest(context, calibration, config, as_of, at, frames, metadata)
        )
        frames["clv_status"] = _status(
            as_of, config, repeat_buyers(production), refusal, backtest_outcome, at
        )
        metadata["clv_status"] = {
            "clv_status": frames["clv_status"]["clv_status"].iloc[0],
            "model": config.clv_model,
            "backtest": backtest_outcome,
        }
        write_python_marts(connection, TABLES, REPLACED, frames)
        for name in TABLES:
            rows = connection.execute(f"select count(*) from marts.{name}").fetchone()[0]
            yield dg.MaterializeResult(
                asset_key=["marts", name], metadata={"dagster/row_count": rows, **metadata[name]}
            )


def _run_backtest(
    context: dg.AssetExecutionContext,
    calibration: pd.DataFrame,
    config: Settings,
    as_of: date,
    at: datetime,
    frames: dict[str, pd.DataFrame],
    metadata: dict[str, dict[str, object]],
) -> str:
    """Fit on the calibration cut and forecast the holdout, adding its rows to `frames`; returns what happened
    (a backtest that cannot be made is a warning: the production fit passed its own checks)."""
    try:
        require_enough_data(calibration, config.clv_min_repeat_buyers, "calibration")
        calibration_end = calibration["period_end"].iloc[0].date()
        result = backtest(calibration, config.clv_model, config.clv_holdout)
    except ClvFitError as error:
        context.log.warning(f"CLV backtest not made this run: {error}")
        return f"not made: {error}"
    fits, frames["clv_backtest"], frames["clv_backtest_by_frequency"] = _backtest_frames(
        result, config, calibration_end, as_of, at
    )
    frames["clv_model_fits"] = pd.concat([frames["clv_model_fits"], pd.DataFrame(fits)])
    metadata["clv_backtest"] = {
        "calibration_end": str(calibration_end),
        "parameters": dg.MetadataValue.json(
            {fit.model: fit.parameters for fit in (result.transactions, result.spend)}
        ),
        "predicted_total": result.predicted_total,
        "actual_total": result.actual_total,
        "mae": result.mean_absolute_error,
    }
    return "made"


defs = dg.Definitions(assets=[clv])
