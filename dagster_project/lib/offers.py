"""The uplift model of the next best offer (docs/metrics.md, "Next best offer"). The only module that imports
scikit-learn.

Two models (a "T-learner"): one learns the chance of buying the campaign's product type in the attribution
window among the contacted, the other among the control group, both from what was known about the customer
at the contact (intermediate.int_offer_training); the uplift of contacting a customer is the difference.
Chosen over the class-transformation approach because campaigns hold out different control shares (5-20 %,
some none): the transformed outcome needs each row's treatment probability and divides by it, so a small
control group's rows weigh up to twenty times more and the estimate gets noisy, while each of the two models
simply learns its own group's behaviour. Both are scikit-learn's HistGradientBoostingClassifier on the binned
features, with the product type and the medium as their index in the sorted categories, split like any number
(at a million customers this ranks later campaigns as well as declaring them categorical - top 20 % 3.6x random
against 3.7x - and scores the offers twice as fast: no column transformer before every prediction).

Evaluation (`backtest`) is out of time: fitted on the campaigns that started before a split date, scored on the
later ones. Campaigns differ in control share, so a group's conversion rate is estimated with inverse
probability weights (a contacted member weighs 1 / the campaign's contacted share, a control member 1 / its
control share): what every group would show in a campaign with the same split.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from dagster_project.lib.lazy import lazy_module

if TYPE_CHECKING:
    import duckdb
    import numpy as np
    import pandas as pd
    from sklearn.ensemble import HistGradientBoostingClassifier
else:
    np = lazy_module("numpy")
    pd = lazy_module("pandas")


CUSTOMER_FEATURES = [  # dbt macro offer_customer_features(), in the same order
    "recency_bin",
    "frequency_bin",
    "order_value_bin",
    "tenure_bin",
    "open_complaint_bin",
    "service_contacts_bin",
    "service_style_bin",
    "campaigns_contacted_bin",
    "campaigns_responded_bin",
]
OFFER_FEATURES = ["product_types_held_bin", "holds_offer_type", "affinity_bin"]
CATEGORICAL = ["offer_product_type", "media"]
FEATURES = CUSTOMER_FEATURES + OFFER_FEATURES + CATEGORICAL
OUTCOME = "converted_product_type"
TOP_SHARES = (0.1, 0.2, 0.3)
QINI_POINTS = 100  # the Qini curve is read at every 1 % of the ranking
# HistGradientBoostingClassifier's settings, for both models. Small, because every distinct customer profile is
# scored (2.3 million at a million customers): 20 trees of 8 leaves at a learning rate of 0.2 rank later campaigns
# as well as 40 at 0.1 or 100 of 15 leaves, within the backtest's noise (top 20 % uplift against random: 3.4x
# against 3.6x at a million customers, 3.7x against 3.6x at 50,000), and score in half the time.
LEARNER = {
    "max_iter": 20,
    "learning_rate": 0.2,
    "max_leaf_nodes": 8,
    "min_samples_leaf": 50,
    "l2_regularization": 1.0,
    "early_stopping": False,
    "random_state": 0,
}
TEST_SHARE = 0.3  # of the training rows, from the latest campaigns, evaluate the backtest fit
MIN_CONTROL_ROWS = 200  # fewest control-group members each side of the split (and in a production fit)


class OfferModelError(RuntimeError):
    """Too little history to fit or evaluate the model; the offers fall back to affinity."""


@dataclass(frozen=True)
class UpliftModel:
    treated: HistGradientBoostingClassifier
    control: HistGradientBoostingClassifier
    categories: dict[str, list[str]]

    @property
    def product_types(self) -> list[str]:
        return self.categories["offer_product_type"]

    def predict(self, frame: pd.DataFrame) -> pd.DataFrame:
        """p_treated, p_control and uplift (their difference) per row of `frame` (FEATURES columns)."""
        return self.predict_encoded(encode(frame, self.categories))

    def predict_encoded(self, features: np.ndarray) -> pd.DataFrame:
        """The same from the FEATURES already encoded (see `encode`)."""
        treated = self.treated.predict_proba(features)[:, 1]
        control = self.control.predict_proba(features)[:, 1]
        return pd.DataFrame({"p_treated": treated, "p_control": control, "uplift": treated - control})


def read_training(connection: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """intermediate.int_offer_training in a fixed order: the fits must not depend on the order the engine that
    built it stored its rows in (DuckDB or Spark: docs/spark.md)."""
    return connection.execute(
        "select * from intermediate.int_offer_training order by source_system, campaign_id, customer_id"
    ).df()


def encode(frame: pd.DataFrame, categories: dict[str, list[str]]) -> np.ndarray:
    """The FEATURES as a float matrix: categories as their index in `categories` (unknown: missing)."""
    columns = [frame[name].to_numpy(dtype=float) for name in CUSTOMER_FEATURES + OFFER_FEATURES]
    for name in CATEGORICAL:
        codes = pd.Categorical(frame[name], categories=categories[name]).codes.astype(float)
        columns.append(np.where(codes < 0, np.nan, codes))
    return np.column_stack(columns)


def _learner() -> HistGradientBoostingClassifier:
    # Imported here: scikit-learn is needed when a model is fitted, not when the code location loads.
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(**LEARNER)


def require_enough_history(training: pd.DataFrame, what: str) -> None:
    control = int(training["is_control"].sum())
    if control < MIN_CONTROL_ROWS or len(training) - control < MIN_CONTROL_ROWS:
        raise OfferModelError(
            f"{what}: {control:,} control-group and {len(training) - control:,} contacted members of campaigns "
            f"with a product type and a control group, {MIN_CONTROL_ROWS:,} of each needed"
        )


def fit(training: pd.DataFrame) -> UpliftModel:
    """The two models, each on its group's rows of `training` (int_offer_training)."""
    require_enough_history(training, "fit")
    categories = {name: sorted(training[name].dropna().unique().tolist()) for name in CATEGORICAL}
    features = encode(training, categories)
    outcome = training[OUTCOME].to_numpy(dtype=bool)
    control = training["is_control"].to_numpy(dtype=bool)
    models = []
    for group in (~control, control):
        if outcome[group].all() or not outcome[group].any():
            raise OfferModelError("fit: a group's members all bought, or none did: nothing to learn")
        models.append(_learner().fit(features[group], outcome[group]))
    return UpliftModel(models[0], models[1], categories)


def weights(frame: pd.DataFrame) -> np.ndarray:
    """Inverse probability weights: a contacted member 1 / their campaign's contacted share, a control member
    1 / its control share (shares of the rows in `frame`)."""
    control = frame["is_control"].to_numpy(dtype=bool)
    control_share = frame.groupby(["source_system", "campaign_id"])["is_control"].transform("mean").to_numpy()
    return np.where(control, 1 / control_share, 1 / (1 - control_share))


def split_date(training: pd.DataFrame) -> object:
    """The first campaign start date with at least 1 - TEST_SHARE of the rows before it (the latest start when
    none has): the campaigns from it on are held out for evaluation."""
    rows_per_start = training["campaign_start_date"].value_counts().sort_index()
    share_before = (rows_per_start.cumsum() - rows_per_start) / len(training)
    reached = share_before[share_before >= 1 - TEST_SHARE]
    return reached.index[0] if len(reached) else rows_per_start.index[-1]


@dataclass(frozen=True)
class Backtest:
    split_date: object
    train_rows: int
    test_rows: int
    train_campaigns: int
    test_campaigns: int
    qini: float
    by_share: pd.DataFrame  # one row per TOP_SHARES: what the top of the ranking brought against random
    test_scores: pd.DataFrame  # the test rows' keys with their predicted uplift
    model: UpliftModel  # fitted on the earlier campaigns


def backtest(training: pd.DataFrame) -> Backtest:
    """Fit on the campaigns that started before `split_date`, rank the later campaigns' members by predicted
    uplift, and compare the top 10, 20 and 30 % with a random selection of the same size."""
    require_enough_history(training, "history")
    cut = split_date(training)
    earlier = training[training["campaign_start_date"] < cut]
    later = training[training["campaign_start_date"] >= cut].reset_index(drop=True)
    require_enough_history(earlier, f"backtest fit on campaigns started before {cut}")
    require_enough_history(later, f"backtest evaluation on campaigns started from {cut}")
    model = fit(earlier)
    predicted = model.predict(later)["uplift"].to_numpy()
    curve = uplift_curve(
        predicted,
        later[OUTCOME].to_numpy(dtype=float),
        later["is_control"].to_numpy(dtype=bool),
        weights(later),
    )
    campaigns = [
        frame[["source_system", "campaign_id"]].drop_duplicates().shape[0] for frame in (earlier, later)
    ]
    return Backtest(
        split_date=cut,
        train_rows=len(earlier),
        test_rows=len(later),
        train_campaigns=campaigns[0],
        test_campaigns=campaigns[1],
        qini=qini_coefficient(curve),
        by_share=top_shares(curve),
        test_scores=later[["source_system", "campaign_id", "customer_id"]].assign(predicted_uplift=predicted),
        model=model,
    )


def uplift_curve(
    predicted: np.ndarray, outcome: np.ndarray, control: np.ndarray, weight: np.ndarray
) -> pd.DataFrame:
    """Rows ranked by predicted uplift, highest first (ties in a fixed random order), with the running weighted
    counts and conversions of each group: the cumulative columns every ranking measure is read from."""
    tie_break = np.random.default_rng(0).random(len(predicted))
    order = np.lexsort((tie_break, -predicted))
    treated_weight = np.where(control, 0.0, weight)[order]
    control_weight = np.where(control, weight, 0.0)[order]
    return pd.DataFrame(
        {
            "rank": np.arange(1, len(order) + 1),
            "treated": np.cumsum(treated_weight),
            "control": np.cumsum(control_weight),
            "treated_conversions": np.cumsum(treated_weight * outcome[order]),
            "control_conversions": np.cumsum(control_weight * outcome[order]),
        }
    )


def _uplift(row: pd.Series) -> float:
    """Conversion rate of the contacted less that of the control group, over the rows up to `row`."""
    if row["treated"] == 0 or row["control"] == 0:
        return float("nan")
    return row["treated_conversions"] / row["treated"] - row["control_conversions"] / row["control"]


def _at_share(curve: pd.DataFrame, share: float) -> pd.Series:
    return curve.iloc[max(round(share * len(curve)), 1) - 1]


def top_shares(curve: pd.DataFrame) -> pd.DataFrame:
    """Per TOP_SHARES: the uplift (points of conversion) of the top share of the ranking, the uplift of all
    (what a random selection of the same size brings, on average), their ratio, and the share of all the
    incremental conversions the top captures."""
    overall = _uplift(curve.iloc[-1])
    rows = []
    for share in TOP_SHARES:
        top = _at_share(curve, share)
        uplift = _uplift(top)
        rows.append(
            {
                "top_share": share,
                "customers": int(top["rank"]),
                "uplift_top": uplift,
                "uplift_all": overall,
                "uplift_ratio_vs_random": uplift / overall if overall > 0 else float("nan"),
                "incremental_share_captured": (uplift * top["rank"]) / (overall * len(curve))
                if overall > 0
                else float("nan"),
            }
        )
    return pd.DataFrame(rows)


def qini_coefficient(curve: pd.DataFrame) -> float:
    """Area between the Qini curve and the random line, per member ranked. The Qini curve at the top k rows is
    the incremental conversions there, treated conversions less control conversions scaled to the treated's
    size (Radcliffe 2007), read at every 1 % of the ranking; the random line joins 0 to its value over all
    rows. Positive: the ranking puts those who convert because of the contact first."""
    points = pd.DataFrame([_at_share(curve, step / QINI_POINTS) for step in range(1, QINI_POINTS + 1)])
    incremental = points["treated_conversions"] - points["control_conversions"] * points["treated"] / points[
        "control"
    ].where(points["control"] > 0)
    incremental = incremental.fillna(0.0).to_numpy()
    random_line = incremental[-1] * np.arange(1, QINI_POINTS + 1) / QINI_POINTS
    return float(np.mean(incremental - random_line) / curve["treated"].iloc[-1])
