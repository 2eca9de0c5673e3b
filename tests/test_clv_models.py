"""The CLV model fits against published figures (Fader, Hardie & Lee 2005, CDNOW 1/10 sample)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from lifetimes.datasets import load_cdnow_summary_data_with_monetary_value
from scipy.special import hyp2f1

from dagster_project.lib import clv
from dagster_project.lib.clv import (
    ClvFitError,
    backtest,
    discounted_expected_purchases,
    fit_spend,
    fit_transactions,
    fitted_model,
    frequency_monetary_correlation,
    rate_per_unit,
    score_customers,
    sufficient_statistics,
)
from dagster_project.lib.settings import CLV_MODELS
from dagster_project.synthetic.behaviour import PurchaseModel, clv_summary, simulate_purchases


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    """2,357 CDNOW customers, 39-week calibration: frequency, recency, T (weeks), monetary_value."""
    return load_cdnow_summary_data_with_monetary_value()


def test_bgnbd_reproduces_the_published_cdnow_parameters(cdnow):
    fit, _ = fit_transactions(cdnow, "bgnbd")
    assert fit.parameters == pytest.approx({"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}, abs=0.001)
    assert fit.log_likelihood == pytest.approx(-9582.4, abs=0.05)  # FHL (2005), section 4
    assert fit.n_customers == 2357 and fit.n_unique_rows < 2357


def test_a_model_rebuilt_from_stored_parameters_predicts_as_the_fitted_one(cdnow):
    """The notebooks rebuild models from marts.clv_model_fits. Checked against BG/NBD's closed form (FHL 2005,
    eq. 9): E[X(t)] = (a+b-1)/(a-1) * [1 - (alpha/(alpha+t))^r * 2F1(r, b; a+b-1; t/(alpha+t))]."""
    fit, fitter = fit_transactions(cdnow, "bgnbd")
    rebuilt = fitted_model("bgnbd", fit.parameters)
    t = np.array([13.0, 39.0, 78.0])
    assert rebuilt.expected_number_of_purchases_up_to_time(t) == pytest.approx(
        fitter.expected_number_of_purchases_up_to_time(t), rel=1e-12
    )
    r, alpha, a, b = (fit.parameters[name] for name in ("r", "alpha", "a", "b"))
    closed_form = (
        (a + b - 1) / (a - 1) * (1 - (alpha / (alpha + 39)) ** r * hyp2f1(r, b, a + b - 1, 39 / (alpha + 39)))
    )
    assert float(rebuilt.expected_number_of_purchases_up_to_time(39.0)) == pytest.approx(
        closed_form, rel=1e-9
    )
    spend, _ = fit_spend(cdnow[cdnow["frequency"] > 0])
    mean_spend = fitted_model("gammagamma", spend.parameters).conditional_expected_average_profit(
        cdnow["frequency"], cdnow["monetary_value"]
    )
    assert float(mean_spend.mean()) > 0


def test_pareto_nbd_reproduces_the_published_cdnow_log_likelihood(cdnow):
    fit, _ = fit_transactions(cdnow, "paretonbd")
    assert fit.log_likelihood == pytest.approx(-9595.0, abs=0.05)  # FHL (2005): Pareto/NBD on the same data
    assert fit.parameters == pytest.approx(
        {"r": 0.553, "alpha": 10.578, "s": 0.606, "beta": 11.669}, abs=0.01
    )


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
    # The recorded log-likelihood is the total over customers, the same with one row per customer.
    one_row_each, _ = fit_transactions(cdnow, "bgnbd", unique_rows=False)
    assert one_row_each.n_unique_rows == 2357 and weighted.n_unique_rows == 1016
    assert one_row_each.parameters == pytest.approx(weighted.parameters, rel=1e-4)
    assert weighted.log_likelihood == pytest.approx(one_row_each.log_likelihood, abs=1e-3)
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


def test_no_repeat_buyer_or_a_fit_that_does_not_give_back_its_data_is_refused():
    one_time_buyers = pd.DataFrame({"frequency": 0, "recency": 0.0, "T": [float(t) for t in range(1, 51)]})
    with pytest.raises(ClvFitError, match="none of 50 customers bought again"):
        fit_transactions(one_time_buyers)
    wild_spend = pd.DataFrame(
        {"frequency": [1, 2, 3, 1, 2], "monetary_value": [1.0, 1000.0, 0.5, 5000.0, 2.0]}
    )
    with pytest.raises(ClvFitError, match="gammagamma fit"):
        fit_spend(wild_spend)


def test_an_annual_rate_compounds_to_the_same_rate_per_week_and_day():
    assert (1 + rate_per_unit(0.10, "week")) ** (365.25 / 7) == pytest.approx(1.10)
    assert (1 + rate_per_unit(0.10, "day")) ** 365.25 == pytest.approx(1.10)
    assert rate_per_unit(0.0, "week") == 0.0


def test_discounted_clv_equals_lifetimes_customer_lifetime_value_at_its_monthly_step(cdnow):
    """lifetimes fixes the period at a month (4.345 weeks for freq='W'); the same sum with that period agrees."""
    _, transactions = fit_transactions(cdnow, "bgnbd")
    _, spend = fit_spend(cdnow)
    customers = cdnow.head(50)
    published = spend.customer_lifetime_value(
        transactions,
        customers["frequency"],
        customers["recency"],
        customers["T"],
        customers["monetary_value"],
        time=12,
        discount_rate=0.01,
        freq="W",
    )
    ours = discounted_expected_purchases(
        transactions, customers, periods=12, rate_per_period=0.01, period_length=4.345
    ) * spend.conditional_expected_average_profit(customers["frequency"], customers["monetary_value"])
    assert ours.to_numpy() == pytest.approx(published.to_numpy(), rel=1e-9)


@pytest.mark.parametrize("model", CLV_MODELS)
def test_the_discounted_sum_through_p_alive_equals_the_sum_over_every_customer_history(cdnow, model):
    """discounted_expected_purchases runs the period sum once per distinct (x, T) and multiplies by P(alive):
    the same figures as summing the model's conditional expectation for each customer's own (x, t_x, T)."""
    _, transactions = fit_transactions(cdnow, model)
    customers = cdnow.iloc[::7]
    direct = np.zeros(len(customers))
    previous = np.zeros(len(customers))
    for period in range(1, 13):
        cumulative = np.asarray(
            transactions.conditional_expected_number_of_purchases_up_to_time(
                period * 4.0, customers["frequency"], customers["recency"], customers["T"]
            ),
            dtype=float,
        )
        direct += (cumulative - previous) / 1.01**period
        previous = cumulative
    ours = discounted_expected_purchases(
        transactions, customers, periods=12, rate_per_period=0.01, period_length=4.0
    )
    assert ours == pytest.approx(direct, rel=1e-9)
    assert (customers["frequency"] > 0).sum() > 100 and ours.min() < 0.5 * ours.max()  # a real spread


def test_scores_are_probabilities_and_non_negative_profit_with_the_population_spend_for_one_time_buyers(
    cdnow,
):
    _, transactions = fit_transactions(cdnow, "bgnbd")
    spend_fit, spend = fit_spend(cdnow)
    customers = cdnow.reset_index(names="customer_id").assign(margin_rate=0.25)
    customers.loc[0, "monetary_value"] = -5.0  # a repeat buyer whose repeat days net negative
    scores = score_customers(
        customers, transactions, spend, horizon=52, annual_discount_rate=0.10, time_unit="week"
    )
    assert (
        len(scores) == len(customers) and scores["customer_id"].tolist() == customers["customer_id"].tolist()
    )
    assert scores["p_alive"].between(0, 1).all() and (scores["clv"] >= 0).all()
    p, q, v = (spend_fit.parameters[name] for name in ("p", "q", "v"))
    no_repeat_spend = scores.loc[(customers["frequency"] == 0) | (customers.index == 0), "expected_avg_spend"]
    assert no_repeat_spend.to_numpy() == pytest.approx(p * v / (q - 1))  # Gamma-Gamma at x = 0
    # One customer by hand: 52 weekly steps of expected purchases, each discounted (1.1 ** (k * 7 / 365.25)).
    one = customers.iloc[[7]]
    steps = [
        transactions.conditional_expected_number_of_purchases_up_to_time(
            k, one["frequency"], one["recency"], one["T"]
        )
        for k in range(0, 53)
    ]
    by_hand = sum(
        (float(steps[k].iloc[0]) - float(steps[k - 1].iloc[0])) / 1.1 ** (k * 7 / 365.25)
        for k in range(1, 53)
    )
    expected_spend = float(
        spend.conditional_expected_average_profit(one["frequency"], one["monetary_value"]).iloc[0]
    )
    assert scores.loc[7, "clv"] == pytest.approx(by_hand * expected_spend * 0.25, rel=1e-9)
    assert scores.loc[7, "expected_purchases"] == pytest.approx(float(steps[52].iloc[0]))


def test_the_backtest_compares_the_holdout_forecast_with_what_happened(cdnow):
    calibration = cdnow.assign(holdout_purchase_days=[1, 0, 3] * (len(cdnow) // 3) + [0] * (len(cdnow) % 3))
    result = backtest(calibration, "bgnbd", holdout_units=39)
    assert result.predicted_total == pytest.approx(1653.4, abs=0.1)  # FHL (2005): weeks 40-78
    assert result.actual_total == calibration["holdout_purchase_days"].sum()
    assert result.by_frequency["customers"].sum() == len(cdnow)
    assert result.by_frequency["calibration_frequency"].max() == 7
    assert result.by_frequency["predicted_purchases"].sum() == pytest.approx(result.predicted_total)


def test_the_model_setting_offers_exactly_the_models_fitted():
    from dagster_project.lib.lifetimes_fitters import FITTERS

    assert set(FITTERS) == {*CLV_MODELS, "gammagamma"}  # a lifetimes class for every model the setting offers


def test_the_fits_recover_the_parameters_the_generator_simulated_with():
    """40,000 people of the generator's exact BG/NBD + Gamma-Gamma process over four years: the fits on the
    unique rows come back to the true parameters (sampling error at this size is a few percent)."""
    truth = PurchaseModel()
    orders, _ = simulate_purchases(np.random.default_rng(3), 40_000, 4 * 365, truth)
    summary = clv_summary(orders, 4 * 365)
    transactions, _ = fit_transactions(summary, "bgnbd")
    spend, _ = fit_spend(summary)
    expected = {"r": truth.r, "alpha": truth.alpha, "a": truth.a, "b": truth.b}
    assert transactions.parameters == pytest.approx(expected, rel=0.12)
    assert spend.parameters == pytest.approx({"p": truth.p, "q": truth.q, "v": truth.v}, rel=0.12)


@pytest.mark.parametrize("model", CLV_MODELS)
def test_a_large_base_started_from_a_sample_fit_reaches_the_same_optimum(model, monkeypatch):
    """From 2 x WARM_START_CUSTOMERS customers on, the optimiser starts at a sample's optimum: the parameters
    are those of lifetimes' default start (to the optimiser's tolerance), and so is the log-likelihood."""
    monkeypatch.setattr(clv, "WARM_START_CUSTOMERS", 2_000)
    orders, _ = simulate_purchases(np.random.default_rng(5), 6_000, 4 * 365, PurchaseModel())
    summary = clv_summary(orders, 4 * 365)
    starts = []
    starting_point = clv._starting_point
    monkeypatch.setattr(
        clv, "_starting_point", lambda *args: starts.append(starting_point(*args)) or starts[-1]
    )
    warm_transactions, _ = fit_transactions(summary, model)
    warm_spend, _ = fit_spend(summary)
    assert len(starts) == 2 and all(start is not None for start in starts)
    monkeypatch.setattr(clv, "WARM_START_CUSTOMERS", 1_000_000)
    cold_transactions, _ = fit_transactions(summary, model)
    cold_spend, _ = fit_spend(summary)
    assert warm_transactions.parameters == pytest.approx(cold_transactions.parameters, rel=1e-4)
    assert warm_transactions.log_likelihood == pytest.approx(cold_transactions.log_likelihood, abs=0.01)
    assert warm_spend.parameters == pytest.approx(cold_spend.parameters, rel=1e-4)
