"""The CLV model fits against published figures (Fader, Hardie & Lee 2005, CDNOW 1/10 sample)."""

from __future__ import annotations

import pandas as pd
import pytest
from lifetimes.datasets import load_cdnow_summary_data_with_monetary_value

from dagster_project.lib.clv import (
    ClvFitError,
    fit_spend,
    fit_transactions,
    frequency_monetary_correlation,
    sufficient_statistics,
)


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    """2,357 CDNOW customers, 39-week calibration: frequency, recency, T (weeks), monetary_value."""
    return load_cdnow_summary_data_with_monetary_value()


def test_bgnbd_reproduces_the_published_cdnow_parameters(cdnow):
    fit, _ = fit_transactions(cdnow, "bgnbd")
    assert fit.parameters == pytest.approx({"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}, abs=0.001)
    assert fit.n_customers == 2357 and fit.n_unique_rows < 2357


def test_gamma_gamma_reproduces_the_published_cdnow_parameters(cdnow):
    fit, _ = fit_spend(cdnow)
    assert fit.parameters == pytest.approx({"p": 6.25, "q": 3.74, "v": 15.44}, abs=0.01)
    assert fit.n_customers == int(((cdnow.frequency > 0) & (cdnow.monetary_value > 0)).sum())
    assert -0.2 < frequency_monetary_correlation(cdnow) < 0.2  # the model's independence assumption


def test_fitting_unique_rows_with_weights_equals_fitting_every_customer(cdnow):
    from lifetimes import BetaGeoFitter

    plain = BetaGeoFitter().fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])
    weighted, _ = fit_transactions(cdnow, "bgnbd")
    assert weighted.parameters == pytest.approx(dict(plain.params_), rel=1e-5)
    # The recorded log-likelihood is the total over customers, the same either way.
    assert weighted.log_likelihood == pytest.approx(-plain._negative_log_likelihood_ * len(cdnow), rel=1e-6)
    unique = sufficient_statistics(cdnow, ["frequency", "recency", "T"])
    assert unique["weight"].sum() == len(cdnow)


@pytest.mark.parametrize("model", ["paretonbd", "mbgnbd"])
def test_the_other_transaction_models_fit(cdnow, model):
    fit, fitter = fit_transactions(cdnow, model)
    assert fit.model == model and all(value > 0 for value in fit.parameters.values())
    assert set(fit.parameters) == set(fitter.params_.index)


def test_a_model_without_data_or_unknown_fails_clearly(cdnow):
    with pytest.raises(ClvFitError, match="no customers"):
        fit_transactions(cdnow.iloc[0:0])
    with pytest.raises(ClvFitError, match="unknown model 'nbd'"):
        fit_transactions(cdnow, "nbd")
    with pytest.raises(ClvFitError, match="no repeat buyer"):
        fit_spend(cdnow[cdnow.frequency == 0])
