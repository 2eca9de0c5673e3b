"""Lifetime-value models (DESIGN §7): BG/NBD, Pareto/NBD or MBG/NBD for repeat purchases and Gamma-Gamma for
spend, from `lifetimes`. The only module that imports lifetimes.

Fits run on sufficient statistics: the unique (frequency, recency, T) rows with their counts as weights,
which has the same likelihood as one row per customer and is orders of magnitude smaller.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd
from lifetimes import BetaGeoFitter, GammaGammaFitter, ModifiedBetaGeoFitter, ParetoNBDFitter
from lifetimes.utils import ConvergenceError

TRANSACTION_MODELS = {
    "bgnbd": BetaGeoFitter,
    "paretonbd": ParetoNBDFitter,
    "mbgnbd": ModifiedBetaGeoFitter,
}
SPEND_MODEL = "gammagamma"


class ClvFitError(RuntimeError):
    """A model did not converge or gave parameters that cannot be used; nothing should be written."""


@dataclass(frozen=True)
class ModelFit:
    """A fitted model: lifetimes' parameter names and values, and the data it saw."""

    model: str
    parameters: dict[str, float]
    log_likelihood: float
    n_customers: int
    n_unique_rows: int


def sufficient_statistics(frame: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """The unique rows of `columns` with how many customers share each (column `weight`)."""
    return frame.groupby(columns, as_index=False, sort=True).size().rename(columns={"size": "weight"})


def _checked(model: str, fitter: object, weights: pd.Series) -> ModelFit:
    parameters = {name: float(value) for name, value in fitter.params_.items()}
    if not all(math.isfinite(value) and value > 0 for value in parameters.values()):
        raise ClvFitError(f"{model} fit is degenerate: parameters {parameters} must be finite and positive")
    # lifetimes minimises the weighted mean negative log-likelihood (Pareto/NBD divides by the mean weight).
    scale = weights.mean() if model == "paretonbd" else weights.sum()
    log_likelihood = -float(fitter._negative_log_likelihood_) * float(scale)
    if not math.isfinite(log_likelihood):
        raise ClvFitError(f"{model} fit has a non-finite log-likelihood")
    return ModelFit(model, parameters, log_likelihood, int(weights.sum()), len(weights))


def fit_transactions(summary: pd.DataFrame, model: str = "bgnbd") -> tuple[ModelFit, object]:
    """Fit the repeat-purchase model on (frequency, recency, T) per customer, through sufficient statistics."""
    if model not in TRANSACTION_MODELS:
        raise ClvFitError(f"unknown model {model!r}; choose one of {sorted(TRANSACTION_MODELS)}")
    if summary.empty:
        raise ClvFitError(f"{model}: no customers to fit")
    unique = sufficient_statistics(summary, ["frequency", "recency", "T"])
    fitter = TRANSACTION_MODELS[model]()
    try:
        fitter.fit(unique["frequency"], unique["recency"], unique["T"], weights=unique["weight"])
    except (ConvergenceError, ValueError, FloatingPointError) as error:
        raise ClvFitError(f"{model} fit failed on {len(summary)} customers: {error}".strip()) from error
    return _checked(model, fitter, unique["weight"]), fitter


def fit_spend(summary: pd.DataFrame) -> tuple[ModelFit, object]:
    """Fit Gamma-Gamma on repeat buyers with positive mean spend (frequency, monetary_value)."""
    repeat_buyers = summary[(summary["frequency"] > 0) & (summary["monetary_value"] > 0)]
    if repeat_buyers.empty:
        raise ClvFitError("gammagamma: no repeat buyer with positive spend to fit")
    unique = sufficient_statistics(repeat_buyers, ["frequency", "monetary_value"])
    fitter = GammaGammaFitter()
    try:
        fitter.fit(unique["frequency"], unique["monetary_value"], weights=unique["weight"])
    except (ConvergenceError, ValueError, FloatingPointError) as error:
        raise ClvFitError(
            f"gammagamma fit failed on {len(repeat_buyers)} customers: {error}".strip()
        ) from error
    return _checked(SPEND_MODEL, fitter, unique["weight"]), fitter


def frequency_monetary_correlation(summary: pd.DataFrame) -> float:
    """Pearson correlation of frequency and mean spend among repeat buyers: Gamma-Gamma assumes ~0."""
    repeat_buyers = summary[(summary["frequency"] > 0) & (summary["monetary_value"] > 0)]
    if len(repeat_buyers) < 2:
        return float("nan")
    return float(repeat_buyers["frequency"].corr(repeat_buyers["monetary_value"]))
