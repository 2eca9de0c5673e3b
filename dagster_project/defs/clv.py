"""CLV assets (DESIGN §7): the lifetimes models fitted on intermediate.int_clv_inputs, every purchasing
customer scored, and a backtest on the calibration cut. Writes marts.clv_model_fits, marts.customer_clv,
marts.clv_backtest and marts.clv_backtest_by_frequency in one transaction: a failed fit writes nothing."""

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
    score_customers,
)
from dagster_project.lib.settings import Settings
from dagster_project.lib.warehouse import connect

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
}

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


def _write(connection: duckdb.DuckDBPyConnection, frames: dict[str, pd.DataFrame]) -> None:
    """Append the fits and backtests, replace customer_clv, all in one transaction."""
    connection.execute("create schema if not exists marts")
    for name, columns in TABLES.items():
        connection.execute(f"create table if not exists marts.{name} ({columns})")
    connection.execute("begin")
    try:
        connection.execute("delete from marts.customer_clv")
        for name, frame in frames.items():
            if not frame.empty:
                connection.register("incoming", frame)
                column_list = ", ".join(frame.columns)
                connection.execute(
                    f"insert into marts.{name} ({column_list}) select {column_list} from incoming"
                )
                connection.unregister("incoming")
        connection.execute("commit")
    except Exception:
        connection.execute("rollback")
        raise


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


@dg.multi_asset(specs=_specs(), pool=WAREHOUSE_POOL, can_subset=False)
def clv(context: dg.AssetExecutionContext, settings: SettingsResource) -> Iterator[dg.MaterializeResult]:
    """Fit the repeat-purchase model (C360_CLV_MODEL) and Gamma-Gamma on the production cut, score every
    purchasing customer over C360_CLV_HORIZON units, discounted at C360_DISCOUNT_RATE; fit the same on the
    calibration cut and compare its holdout forecast with what happened. A failed or degenerate fit fails
    the step and writes nothing."""
    config = settings.get()
    at = datetime.now(UTC).replace(tzinfo=None)
    with connect(config.warehouse, memory_limit=config.duckdb_memory_limit) as connection:
        production = _read_inputs(connection, "production")
        calibration = _read_inputs(connection, "calibration")
        metadata: dict[str, dict[str, object]] = {name: {} for name in TABLES}
        frames = {name: pd.DataFrame() for name in TABLES}
        try:
            if production.empty:
                context.log.warning("no purchases to as_of: customer_clv is empty and no model was fitted")
            else:
                fits, frames["customer_clv"], metadata["customer_clv"] = _production(production, config, at)
                frames["clv_model_fits"] = pd.DataFrame(fits)
            if calibration.empty:
                context.log.warning("no customer purchased before the calibration end: no backtest this run")
            else:
                calibration_end = calibration["period_end"].iloc[0].date()
                as_of = production["period_end"].iloc[0].date()
                result = backtest(calibration, config.clv_model, config.clv_holdout)
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
        except ClvFitError as error:
            raise dg.Failure(description=f"CLV not written: {error}") from error
        _write(connection, frames)
        for name in TABLES:
            rows = connection.execute(f"select count(*) from marts.{name}").fetchone()[0]
            yield dg.MaterializeResult(
                asset_key=["marts", name], metadata={"dagster/row_count": rows, **metadata[name]}
            )


defs = dg.Definitions(assets=[clv])
