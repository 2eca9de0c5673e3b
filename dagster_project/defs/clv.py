"""CLV assets (docs/metrics.md): the lifetimes models fitted on intermediate.int_clv_inputs, every purchasing
customer scored, and a backtest on the calibration cut (lib/clv_marts.py). Writes marts.clv_model_fits,
marts.customer_clv, marts.clv_backtest, marts.clv_backtest_by_frequency and marts.clv_status in one transaction.

A fit that cannot be made (too few repeat buyers, no convergence, a degenerate result) writes no CLV, but does
not stop the run: marts.clv_status says why, customer_clv is empty for this as_of, and what reads it (value
tiers, customer_360, segments, exports, the serving file) is built with the CLV columns null."""

from collections.abc import Iterator
from datetime import UTC, datetime

import dagster as dg

from dagster_project.defs.resources import WAREHOUSE_POOL, SettingsResource, WarehouseResource
from dagster_project.lib.clv_marts import TABLES, ClvOptions, compute_clv, write_clv

INPUTS = dg.AssetKey(["intermediate", "int_clv_inputs"])

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


@dg.multi_asset(specs=_specs(), pool=WAREHOUSE_POOL, can_subset=False)
def clv(
    context: dg.AssetExecutionContext, settings: SettingsResource, warehouse: WarehouseResource
) -> Iterator[dg.MaterializeResult]:
    """Fit the repeat-purchase model (C360_CLV_MODEL) and Gamma-Gamma on the production cut, score every
    purchasing customer over C360_CLV_HORIZON units, discounted at C360_DISCOUNT_RATE; fit the same on the
    calibration cut and compare its holdout forecast with what happened. A fit that cannot be made writes no
    CLV and says why in marts.clv_status; the run goes on without CLV."""
    config = settings.get()
    options = ClvOptions(
        model=config.clv_model,
        time_unit=config.clv_time_unit,
        holdout=config.clv_holdout,
        horizon=config.clv_horizon,
        discount_rate=config.discount_rate,
        min_repeat_buyers=config.clv_min_repeat_buyers,
    )
    with warehouse.connect() as connection:
        run = compute_clv(connection, options, datetime.now(UTC).replace(tzinfo=None))
        if run.refusal is not None:
            context.log.warning(
                f"CLV not computed this run: {run.refusal}. customer_clv is empty, the CLV columns of "
                "customer_value and customer_360 are null and the most_growable tier is left empty; everything "
                "else is built."
            )
        elif run.backtest_refusal is not None:
            context.log.warning(f"CLV backtest not made this run: {run.backtest_refusal}")
        rows = write_clv(connection, run)
    for name in TABLES:
        yield dg.MaterializeResult(
            asset_key=["marts", name], metadata={"dagster/row_count": rows[name], **run.metadata[name]}
        )


defs = dg.Definitions(assets=[clv])
