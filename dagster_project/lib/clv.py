"""Lifetime-value models (docs/metrics.md): BG/NBD, Pareto/NBD or MBG/NBD for repeat purchases and Gamma-Gamma for
spend, from `lifetimes`. lifetimes itself is imported on the first fit
(lib/lifetimes_fitters.py).

Fits run on sufficient statistics: the unique (frequency, recency, T) rows with their counts as weights,
which has the same likelihood as one row per customer and is orders of magnitude smaller.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dagster_project.lib.lazy import lazy_module
from dagster_project.lib.settings import CLV_MODELS

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
else:
    np = lazy_module("numpy")
    pd = lazy_module("pandas")

# A fitted or unfitted lifetimes model (lifetimes has no type information).
Fitter = Any

# The repeat-purchase models (lifetimes' fitters in lib/lifetimes_fitters.py, imported on the first fit).
TRANSACTION_MODELS = CLV_MODELS
SPEND_MODEL = "gammagamma"
HISTORY = ["frequency", "recency", "T"]  # what the repeat-purchase models take, per customer
SPEND_HISTORY = ["frequency", "monetary_value"]  # what Gamma-Gamma takes
TOLERANCES = (1e-7, 1e-6)  # the optimiser's: lifetimes' default, then one retry
FIT_TOLERANCE = 0.25  # largest relative gap between a fit's implied aggregate and the data's
WARM_START_CUSTOMERS = 50_000  # a base of at least twice this many is first fitted on a sample this size


class ClvFitError(RuntimeError):
    """A model did not converge or gave parameters that cannot be used; nothing should be written."""


@dataclass(frozen=True)
class ModelFit:
    """A fitted model: lifetimes' parameter names and values, the data it saw, and the gradient tolerance the
    optimiser converged to."""

    model: str
    parameters: dict[str, float]
    log_likelihood: float
    n_customers: int
    n_unique_rows: int
    tolerance: float


def new_fitter(model: str) -> Fitter:
    """An unfitted lifetimes model of `model` (a TRANSACTION_MODELS name or SPEND_MODEL)."""
    from dagster_project.lib.lifetimes_fitters import FITTERS

    return FITTERS[model]()


def fitted_model(model: str, parameters: dict[str, float]) -> Fitter:
    """A lifetimes model carrying stored parameters (marts.clv_model_fits), to predict or plot with again."""
    fitter = new_fitter(model)
    fitter.params_ = pd.Series(parameters)
    return fitter


def sufficient_statistics(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """The unique rows of `columns` with how many customers share each (column `weight`)."""
    return frame.groupby(columns, as_index=False, sort=True).size().rename(columns={"size": "weight"})


def _checked(
    model: str, fitter: Fitter, unique: pd.DataFrame, columns: list[str], tolerance: float
) -> ModelFit:
    """The fit's parameters, refused unless finite and positive, and its total log-likelihood over customers.

    lifetimes' own `_negative_log_likelihood_` is a mean, and BG/NBD's is taken on time rescaled to 10 / max(T),
    so it is recomputed here from the parameters on the data as given (CDNOW BG/NBD: -9582.4, as published)."""
    parameters = {name: float(value) for name, value in fitter.params_.items()}
    if not all(math.isfinite(value) and value > 0 for value in parameters.values()):
        raise ClvFitError(f"{model} fit is degenerate: parameters {parameters} must be finite and positive")
    values = np.array(list(parameters.values()))
    weights = unique["weight"].to_numpy(dtype=np.float64)
    data = [unique[column].to_numpy(dtype=np.float64) for column in columns]
    if model == "paretonbd":  # takes plain parameters and divides the weighted sum by the mean weight
        negative = type(fitter)._negative_log_likelihood(values, *data, weights, 0.0) * weights.mean()
    else:  # take log-parameters and divide by the total weight
        negative = type(fitter)._negative_log_likelihood(np.log(values), *data, weights, 0.0) * weights.sum()
    log_likelihood = -float(negative)
    if not math.isfinite(log_likelihood):
        raise ClvFitError(f"{model} fit has a non-finite log-likelihood")
    return ModelFit(model, parameters, log_likelihood, int(weights.sum()), len(weights), tolerance)


def _minimise(model: str, customers: int, fit: Callable[[float], Fitter]) -> tuple[Fitter, float]:
    """The fitter `fit(tol)` returns, and the tolerance it converged at: lifetimes' tolerance, then once
    TOLERANCES' looser one (BFGS can stop with "precision loss" at an optimum its gradient tolerance cannot
    certify; the checks after the fit judge it)."""
    from dagster_project.lib.lifetimes_fitters import ConvergenceError

    for tolerance in TOLERANCES:
        try:
            return fit(tolerance), tolerance
        except ConvergenceError as error:
            refusal = _failed(model, customers, error)
        except (ValueError, FloatingPointError) as error:
            raise _failed(model, customers, error) from error
    raise refusal


def _starting_point(
    model: str, customers: pd.DataFrame, columns: list[str], fit: Callable[..., Fitter]
) -> tuple[np.ndarray | None, dict[str, np.ndarray]]:
    """Where the optimiser should start on a large base: the optimum of the same model on WARM_START_CUSTOMERS
    customers drawn at random (a fraction of a second), in lifetimes' own coordinates (log-parameters, and
    for the repeat-purchase models time scaled to max(T) = 1; Pareto/NBD plain parameters), and the options
    that go with it: BFGS's estimate of the inverse Hessian there (`hess_inv0`; lifetimes' likelihoods are
    means over customers, so the sample's curvature is the whole base's). From there the full fit takes 4-5
    evaluations of the likelihood instead of 15 at a million customers (and lifetimes' default start about
    25); it converges to the optimum of all the data by the same test. (None, {}) - lifetimes' default start -
    on a small base or if the sample fit fails."""
    if len(customers) < 2 * WARM_START_CUSTOMERS:
        return None, {}
    from dagster_project.lib.lifetimes_fitters import ConvergenceError

    sample = sufficient_statistics(customers.sample(n=WARM_START_CUSTOMERS, random_state=0), columns)
    try:
        fitted = fit(sample, TOLERANCES[-1])
    except (ConvergenceError, ValueError, FloatingPointError):
        return None, {}
    parameters = fitted.params_.copy()
    if "T" in columns:
        scale = 1.0 / float(customers["T"].max())  # lifetimes' _scale_time on the data it will be given
        for rate in ("alpha", "beta"):
            if rate in parameters:
                parameters[rate] *= scale
    values = parameters.to_numpy(dtype=np.float64)
    curvature = getattr(fitted, "inverse_hessian_", None)  # in log-parameters: the time scale shifts, no more
    return (values if model == "paretonbd" else np.log(values)), (
        {} if curvature is None else {"hess_inv0": curvature}
    )


def _fit_model(
    model: str,
    customers: pd.DataFrame,
    unique: pd.DataFrame,
    columns: list[str],
    fit_on: Callable[..., Fitter],
    warm_start: bool = True,
) -> tuple[Fitter, float]:
    """Fit `model` on the sufficient statistics `unique` of `customers` (`fit_on(rows, tol, initial_params)`
    gives a fitted lifetimes model), starting from a sample's optimum on a large base."""
    start, options = _starting_point(model, customers, columns, fit_on) if warm_start else (None, {})
    return _minimise(model, len(customers), lambda tol: fit_on(unique, tol, start, **options))


def _failed(model: str, customers: int, error: Exception) -> ClvFitError:
    """The optimiser's complaint in one line (lifetimes appends scipy's whole result to it)."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return ClvFitError(
        f"{model} fit failed on {customers} customers: {lines[0] if lines else type(error).__name__}"
    )


def _check_reproduces(model: str, what: str, implied: float, observed: float) -> None:
    """A usable fit gives back, in aggregate, the data it was fitted on (within FIT_TOLERANCE)."""
    if not math.isfinite(implied) or abs(implied - observed) > FIT_TOLERANCE * abs(observed):
        raise ClvFitError(
            f"{model} fit is degenerate: it implies {implied:,.2f} {what} where the data has {observed:,.2f}"
        )


def fit_transactions(
    summary: pd.DataFrame, model: str = "bgnbd", unique_rows: bool = True
) -> tuple[ModelFit, Fitter]:
    """Fit the repeat-purchase model on (frequency, recency, T) per customer, through sufficient statistics
    (or, with unique_rows=False, one row per customer: the same fit, slower; for comparison)."""
    if model not in TRANSACTION_MODELS:
        raise ClvFitError(f"unknown model {model!r}; choose one of {sorted(TRANSACTION_MODELS)}")
    if summary.empty:
        raise ClvFitError(f"{model}: no customers to fit")
    if not (summary["frequency"] > 0).any():
        raise ClvFitError(
            f"{model}: none of {len(summary)} customers bought again; the model cannot be identified"
        )
    if unique_rows:
        unique = sufficient_statistics(summary, HISTORY)
    else:
        unique = summary[HISTORY].reset_index(drop=True).assign(weight=1)

    def fit_on(
        rows: pd.DataFrame, tol: float, initial_params: np.ndarray | None = None, **options: Any
    ) -> Fitter:
        fitter = new_fitter(model)
        fitter.fit(
            rows["frequency"],
            rows["recency"],
            rows["T"],
            weights=rows["weight"],
            tol=tol,
            initial_params=initial_params,
            **options,
        )
        return fitter

    fitter, tolerance = _fit_model(model, summary, unique, HISTORY, fit_on, warm_start=unique_rows)
    fit = _checked(model, fitter, unique, HISTORY, tolerance)
    # E[X(T)] depends on T alone: computed once per distinct T.
    ages = unique.groupby("T", as_index=False)["weight"].sum()
    implied = float((fitter.expected_number_of_purchases_up_to_time(ages["T"]) * ages["weight"]).sum())
    _check_reproduces(
        model, "repeat purchases", implied, float((unique["frequency"] * unique["weight"]).sum())
    )
    return fit, fitter


def fit_spend(summary: pd.DataFrame) -> tuple[ModelFit, Fitter]:
    """Fit Gamma-Gamma on repeat buyers with positive mean spend (frequency, monetary_value)."""
    repeat_buyers = summary[(summary["frequency"] > 0) & (summary["monetary_value"] > 0)]
    if repeat_buyers.empty:
        raise ClvFitError("gammagamma: no repeat buyer with positive spend to fit")
    unique = sufficient_statistics(repeat_buyers, SPEND_HISTORY)
    # Gamma-Gamma is scale-equivariant (spend / c gives v / c, same p and q): fitting spend in units of its
    # mean keeps the optimiser well conditioned whatever the currency, then v is scaled back.
    scale = float((unique["monetary_value"] * unique["weight"]).sum() / unique["weight"].sum())

    def fit_on(
        rows: pd.DataFrame, tol: float, initial_params: np.ndarray | None = None, **options: Any
    ) -> Fitter:
        fitter = new_fitter(SPEND_MODEL)
        fitter.fit(
            rows["frequency"],
            rows["monetary_value"] / scale,
            weights=rows["weight"],
            tol=tol,
            initial_params=initial_params,
            **options,
        )
        return fitter

    fitter, tolerance = _fit_model(SPEND_MODEL, repeat_buyers, unique, SPEND_HISTORY, fit_on)
    fitter.params_["v"] = fitter.params_["v"] * scale
    fit = _checked(SPEND_MODEL, fitter, unique, SPEND_HISTORY, tolerance)
    p, q, v = (fit.parameters[name] for name in ("p", "q", "v"))
    if q <= 1:
        raise ClvFitError(f"gammagamma fit is degenerate: q = {q:.4g} <= 1 has no finite mean spend")
    _check_reproduces(SPEND_MODEL, "mean spend of repeat buyers", p * v / (q - 1), scale)
    return fit, fitter


def repeat_buyers(summary: pd.DataFrame) -> int:
    """Customers with a repeat purchase day and positive mean spend: what Gamma-Gamma is fitted on."""
    return int(((summary["frequency"] > 0) & (summary["monetary_value"] > 0)).sum()) if len(summary) else 0


def require_enough_data(summary: pd.DataFrame, minimum_repeat_buyers: int, cut: str) -> None:
    """Refuse, before fitting, a cut with fewer repeat buyers than `minimum_repeat_buyers`: four BG/NBD
    parameters and three Gamma-Gamma ones are not identified by a handful of customers (lifetimes either
    fails to converge or converges to meaningless values)."""
    found = repeat_buyers(summary)
    if found < minimum_repeat_buyers:
        raise ClvFitError(
            f"{found} repeat buyer{'' if found == 1 else 's'} in the {cut} cut, {minimum_repeat_buyers} needed "
            f"(C360_CLV_MIN_REPEAT_BUYERS)"
        )


def frequency_monetary_correlation(summary: pd.DataFrame) -> float:
    """Pearson correlation of frequency and mean spend among repeat buyers: Gamma-Gamma assumes ~0."""
    repeat_buyers = summary[(summary["frequency"] > 0) & (summary["monetary_value"] > 0)]
    if len(repeat_buyers) < 2:
        return float("nan")
    return float(repeat_buyers["frequency"].corr(repeat_buyers["monetary_value"]))


DAYS_PER_UNIT = {"day": 1, "week": 7}
FREQUENCY_GROUP_CAP = 7  # the backtest table groups seven or more repeat purchase days together, as FHL do


def rate_per_unit(annual_rate: float, time_unit: str) -> float:
    """The discount rate per model time unit equivalent to an annual rate (compounded)."""
    return (1 + annual_rate) ** (DAYS_PER_UNIT[time_unit] / 365.25) - 1


def discounted_expected_purchases(
    fitter: Fitter,
    history: pd.DataFrame,
    periods: int,
    rate_per_period: float,
    period_length: float = 1.0,
) -> np.ndarray:
    """Expected purchases in each of `periods` future periods of `period_length` units, each discounted to
    today by (1 + rate_per_period) ** k, summed. The same sum lifetimes' customer_lifetime_value makes, for any
    period length (lifetimes fixes the period at a month).

    Computed as P(alive | x, t_x, T) times the same sum for a customer known to be alive at T. In the BG/NBD,
    MBG/NBD and Pareto/NBD models a customer alive at T buys at a rate whose posterior depends on x and T only
    (Gamma(r + x, alpha + T)), so E[Y(t) | x, t_x, T] = P(alive | x, t_x, T) * E[Y(t) | alive, x, T]; the
    period-by-period sum then runs once per distinct (x, T), a few thousand, not per customer history. Both
    factors come from the fitted model (lifetimes): the second is E / P(alive) at t_x = T."""
    history = history.reset_index(drop=True)
    p_alive = np.asarray(
        fitter.conditional_probability_alive(history["frequency"], history["recency"], history["T"]),
        dtype=np.float64,
    )

    def if_alive(pairs: pd.DataFrame) -> pd.DataFrame:
        at_t = pairs.assign(recency=pairs["T"])  # t_x = T: the largest P(alive), the safest division
        alive_at_t = np.asarray(
            fitter.conditional_probability_alive(at_t["frequency"], at_t["recency"], at_t["T"]),
            dtype=np.float64,
        )
        total = np.zeros(len(at_t))
        previous = np.zeros(len(at_t))
        for period in range(1, periods + 1):
            cumulative = np.asarray(
                fitter.conditional_expected_number_of_purchases_up_to_time(
                    period * period_length, at_t["frequency"], at_t["recency"], at_t["T"]
                ),
                dtype=np.float64,
            )
            total += (cumulative - previous) / (1 + rate_per_period) ** period
            previous = cumulative
        return pd.DataFrame({"discounted_if_alive": total / alive_at_t})

    return p_alive * _on_unique_rows(history, ["frequency", "T"], if_alive)["discounted_if_alive"].to_numpy()


def _on_unique_rows(frame: pd.DataFrame, columns: list[str], compute) -> pd.DataFrame:
    """Compute per unique combination of `columns` (a frame of new columns), then give every row its values."""
    unique = frame[columns].drop_duplicates().reset_index(drop=True)
    computed = pd.concat([unique, compute(unique)], axis=1)
    return frame[columns].merge(computed, on=columns, how="left", validate="many_to_one")


def score_customers(
    customers: pd.DataFrame,
    transactions: Fitter,
    spend: Fitter,
    horizon: int,
    annual_discount_rate: float,
    time_unit: str,
) -> pd.DataFrame:
    """Per customer (customer_id, frequency, recency, T, monetary_value, margin_rate): p_alive, expected
    purchases over `horizon` units, expected average spend and the discounted CLV as profit (spend x margin).
    A customer with no positive repeat spend gets the population's expected spend (Gamma-Gamma at x = 0)."""
    rate = rate_per_unit(annual_discount_rate, time_unit)

    def purchases(history: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "p_alive": np.asarray(
                    transactions.conditional_probability_alive(
                        history["frequency"], history["recency"], history["T"]
                    ),
                    dtype=np.float64,
                ),
                "expected_purchases": np.asarray(
                    transactions.conditional_expected_number_of_purchases_up_to_time(
                        horizon, history["frequency"], history["recency"], history["T"]
                    ),
                    dtype=np.float64,
                ),
                "discounted_purchases": discounted_expected_purchases(transactions, history, horizon, rate),
            }
        )

    def average_spend(repeat_spend: pd.DataFrame) -> pd.DataFrame:
        expected = spend.conditional_expected_average_profit(
            repeat_spend["spend_frequency"], repeat_spend["spend_value"]
        )
        return pd.DataFrame({"expected_avg_spend": np.asarray(expected, dtype=np.float64)})

    has_repeat_spend = (customers["frequency"] > 0) & (customers["monetary_value"] > 0)
    spend_inputs = pd.DataFrame(
        {
            "spend_frequency": customers["frequency"].where(has_repeat_spend, 0),
            "spend_value": customers["monetary_value"].where(has_repeat_spend, 0.0),
        }
    )
    scored = pd.concat(
        [
            customers[["customer_id"]].reset_index(drop=True),
            _on_unique_rows(customers.reset_index(drop=True), HISTORY, purchases).drop(columns=HISTORY),
            _on_unique_rows(spend_inputs, ["spend_frequency", "spend_value"], average_spend)[
                ["expected_avg_spend"]
            ],
        ],
        axis=1,
    )
    scored["clv"] = (
        scored.pop("discounted_purchases")
        * scored["expected_avg_spend"]
        * customers["margin_rate"].to_numpy()
    )
    values = scored[["p_alive", "expected_purchases", "expected_avg_spend", "clv"]]
    if not np.isfinite(values.to_numpy(dtype=np.float64)).all() or (values < 0).any().any():
        raise ClvFitError("scoring gave a negative or non-finite value; the fitted parameters cannot be used")
    return scored


def predict_holdout(transactions: Fitter, calibration: pd.DataFrame, holdout_units: float) -> pd.Series:
    """Each calibration customer's expected purchases in the `holdout_units` after calibration ends."""

    def expected(history: pd.DataFrame) -> pd.DataFrame:
        predicted = transactions.conditional_expected_number_of_purchases_up_to_time(
            holdout_units, history["frequency"], history["recency"], history["T"]
        )
        return pd.DataFrame({"predicted": np.asarray(predicted, dtype=np.float64)})

    return _on_unique_rows(calibration.reset_index(drop=True), HISTORY, expected)["predicted"]


def backtest_by_frequency(calibration: pd.DataFrame, predicted: pd.Series) -> pd.DataFrame:
    """Predicted and actual holdout purchases per calibration frequency (FREQUENCY_GROUP_CAP = that or more)."""
    frame = pd.DataFrame(
        {
            "calibration_frequency": calibration["frequency"].clip(upper=FREQUENCY_GROUP_CAP).to_numpy(),
            "predicted": predicted.to_numpy(),
            "actual": calibration["holdout_purchase_days"].to_numpy(),
        }
    )
    return (
        frame.groupby("calibration_frequency", as_index=False)
        .agg(
            customers=("actual", "size"),
            predicted_purchases=("predicted", "sum"),
            actual_purchases=("actual", "sum"),
        )
        .astype({"calibration_frequency": int, "customers": int, "actual_purchases": int})
    )


@dataclass(frozen=True)
class Backtest:
    """A model fitted on the calibration cut, its holdout forecast and what happened."""

    transactions: ModelFit
    spend: ModelFit
    holdout_units: float
    predicted_total: float
    actual_total: int
    mean_absolute_error: float
    by_frequency: pd.DataFrame


def backtest(calibration: pd.DataFrame, model: str, holdout_units: float) -> Backtest:
    """Fit on the calibration cut (frequency, recency, T, monetary_value, holdout_purchase_days), predict each
    customer's holdout purchases and compare with the actual ones."""
    transactions, fitter = fit_transactions(calibration, model)
    spend, _ = fit_spend(calibration)
    predicted = predict_holdout(fitter, calibration, holdout_units)
    actual = calibration["holdout_purchase_days"].reset_index(drop=True)
    return Backtest(
        transactions=transactions,
        spend=spend,
        holdout_units=holdout_units,
        predicted_total=float(predicted.sum()),
        actual_total=int(actual.sum()),
        mean_absolute_error=float((predicted - actual).abs().mean()),
        by_frequency=backtest_by_frequency(calibration, predicted),
    )
