"""The uplift model of the next best offer (docs/metrics.md, "Next best offer"; lib/offers.py): a backtest out
of time, a production fit on every past campaign member in intermediate.int_offer_training, and the predicted
uplift of every distinct customer profile x product type x medium in intermediate.int_offer_candidates.
Writes marts.offer_model_fits and marts.offer_model_backtest (appended, like the CLV fits),
marts.offer_uplift_scores and marts.offer_model_status (replaced) in one transaction.

A model whose backtest ranks no better than random (the top 20 % by predicted uplift do not convert because of
the contact more often than everyone does, or the Qini coefficient is not positive), or that cannot be fitted
(too little history), scores nothing: offer_uplift_scores is empty, offer_model_status says why, and the
offers fall back to product affinity."""

import json
import math
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

import dagster as dg
import duckdb

from dagster_project.defs.resources import WAREHOUSE_POOL, SettingsResource, WarehouseResource
from dagster_project.lib import offers
from dagster_project.lib.lazy import lazy_module
from dagster_project.lib.warehouse import scalar, write_python_marts

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd
else:
    np = lazy_module("numpy")
    pd = lazy_module("pandas")

TRAINING = dg.AssetKey(["intermediate", "int_offer_training"])
CANDIDATES = dg.AssetKey(["intermediate", "int_offer_candidates"])
RANKING_SHARE = 0.2  # the share of the ranking whose uplift must beat random for the model to be used

_FEATURE_COLUMNS = ", ".join(
    f"{name} {'varchar' if name in offers.CATEGORICAL else 'double'}" for name in offers.FEATURES
)
TABLES = {
    "offer_model_fits": """
        fit_id varchar primary key, model_version varchar not null, fit_kind varchar not null,
        method varchar not null, learner varchar not null, parameters json not null, features json not null,
        product_types json not null, training_rows integer not null, contacted_rows integer not null,
        control_rows integer not null, sampled_share double not null, control_sampled_share double not null,
        campaigns integer not null,
        trained_from date not null, trained_to date not null, fit_seconds double not null, as_of date,
        fitted_at timestamp not null""",
    "offer_model_backtest": """
        fit_id varchar not null, model_version varchar not null, split_date date not null,
        train_campaigns integer not null, test_campaigns integer not null, test_rows integer not null,
        top_share double not null, customers integer not null, uplift_top double, uplift_all double,
        uplift_ratio_vs_random double, incremental_share_captured double, qini double not null,
        fitted_at timestamp not null, primary key (fit_id, top_share)""",
    "offer_uplift_scores": f"""
        offer_profile_key bigint not null, {_FEATURE_COLUMNS}, p_treated double not null, p_control double not null, uplift double not null,
        model_version varchar not null""",
    "offer_model_status": """
        as_of date, model_version varchar, used_for_ranking boolean not null, offer_model_status varchar not null,
        training_rows integer not null, sampled_share double, control_sampled_share double,
        training_sample varchar not null, checked_at timestamp not null""",
}
REPLACED = ("offer_uplift_scores", "offer_model_status")

DESCRIPTIONS = {
    "offer_model_fits": "One row per uplift model fit (fit_kind backtest or production): the two-model method, "
    "learner and its settings, features, product types, rows it learnt from and the campaigns' dates. Appended.",
    "offer_model_backtest": "One row per backtest and top share (10, 20, 30 %): the later campaigns' members "
    "ranked by the uplift predicted by a fit on the earlier ones; uplift of the top against all (random), the "
    "share of incremental conversions captured, the Qini coefficient. Appended.",
    "offer_uplift_scores": "One row per distinct customer profile x product type x medium among today's offer "
    "candidates: predicted chance of buying the type in the attribution window with and without a contact, "
    "and the uplift. Replaced; empty when the model is not used.",
    "offer_model_status": "One row: whether this run's uplift model ranks the offers and, if not, why. Replaced.",
}


def _specs() -> list[dg.AssetSpec]:
    return [
        dg.AssetSpec(
            ["marts", name],
            deps=[TRAINING, CANDIDATES],
            description=description,
            group_name="marts",
            kinds={"python", "scikitlearn", "duckdb"},
        )
        for name, description in DESCRIPTIONS.items()
    ]


def _fit_row(model_version: str, fit_id: str, kind: str, rows: "pd.DataFrame", model: offers.UpliftModel,
             seconds: float, as_of: date | None, at: datetime) -> dict:  # fmt: skip
    control = int(rows["is_control"].sum())
    return {
        "fit_id": fit_id,
        "model_version": model_version,
        "fit_kind": kind,
        "method": "two_model",
        "learner": type(model.treated).__name__,
        "parameters": json.dumps(offers.LEARNER),
        "features": json.dumps(offers.FEATURES),
        "product_types": json.dumps(model.product_types),
        "training_rows": len(rows),
        "contacted_rows": len(rows) - control,
        "control_rows": control,
        "sampled_share": float(rows["sampled_share"].iloc[0]),
        "control_sampled_share": float(rows["control_sampled_share"].iloc[0]),
        "campaigns": rows[["source_system", "campaign_id"]].drop_duplicates().shape[0],
        "trained_from": rows["campaign_start_date"].min(),
        "trained_to": rows["campaign_start_date"].max(),
        "fit_seconds": round(seconds, 3),
        "as_of": as_of,
        "fitted_at": at,
    }


def _score(
    connection: duckdb.DuckDBPyConnection, model: offers.UpliftModel, model_version: str
) -> tuple[duckdb.DuckDBPyRelation, float]:
    """The predicted uplift of every distinct profile an offer candidate has (int_offer_candidates: customer
    features, medium; int_offer_terms: product type, affinity) among those the model covers (a product type it
    learnt about, a channel with a medium). Features go to the model as numbers straight from DuckDB (categories
    as their index in the model's, as offers.encode does). Returns the scores as a relation on this connection's
    temporary tables (written as they are, without a round trip through Python) and their mean uplift."""
    customer_features = ", ".join([*offers.CUSTOMER_FEATURES, "product_types_held_bin"])
    connection.execute(
        f"""
        create or replace temporary table offer_profiles as
        with customer_profiles as (
            select distinct offer_profile_key, holdings_id, media
            from intermediate.int_offer_candidates
            where media is not null
        ),
        offer_profiles as (
            select distinct
                customer_profiles.offer_profile_key,
                customer_profiles.media,
                terms.offer_product_type,
                terms.affinity_bin
            from customer_profiles
            inner join (
                select distinct holdings_id, offer_product_type, affinity_bin from intermediate.int_offer_terms
            ) as terms on customer_profiles.holdings_id = terms.holdings_id
            where list_contains($product_types, terms.offer_product_type)
        ),
        customer_features as (
            select distinct offer_profile_key, {customer_features}
            from intermediate.int_offer_candidates
        )
        select
            row_number() over () as profile_row,
            offer_profiles.*,
            customer_features.* exclude (offer_profile_key),
            0 as holds_offer_type
        from offer_profiles
        inner join customer_features on offer_profiles.offer_profile_key = customer_features.offer_profile_key
        """,
        {"product_types": model.product_types},
    )
    numbers = ", ".join(offers.CUSTOMER_FEATURES + offers.OFFER_FEATURES)
    codes = ", ".join(
        f"coalesce((list_position(${name}, {name}) - 1)::double, 'nan'::double) as {name}"
        for name in offers.CATEGORICAL
    )
    columns = connection.execute(
        f"select profile_row, {numbers}, {codes} from offer_profiles",
        {name: model.categories[name] for name in offers.CATEGORICAL},
    ).fetchnumpy()
    features = np.empty((len(columns["profile_row"]), len(offers.FEATURES)), order="F")
    for index, name in enumerate(offers.FEATURES):
        features[:, index] = columns[name]
    predicted = model.predict_encoded(features).assign(profile_row=columns["profile_row"])
    connection.register("predicted", predicted)
    scores = connection.sql(
        """
        select offer_profiles.* exclude (profile_row), predicted.* exclude (profile_row),
            $model_version as model_version
        from offer_profiles
        inner join predicted on offer_profiles.profile_row = predicted.profile_row
        """,
        params={"model_version": model_version},
    )
    return scores, float(predicted["uplift"].mean())


def training_sample(sampled_share: float | None, control_sampled_share: float | None) -> str:
    """What the model learns on, in words: every member, or the share of each group kept."""
    if (
        sampled_share is None
        or control_sampled_share is None
        or min(sampled_share, control_sampled_share) >= 1
    ):
        return "every member"
    return (
        f"{control_sampled_share:.1%} of the control-group members and {sampled_share:.1%} of the contacted"
    )


@dg.multi_asset(specs=_specs(), pool=WAREHOUSE_POOL, can_subset=False)
def offer_model(
    context: dg.AssetExecutionContext, settings: SettingsResource, warehouse: WarehouseResource
) -> Iterator[dg.MaterializeResult]:
    """Backtest the two-model uplift learner out of time, fit it on every past campaign member (a sample of the
    contacted above C360_OFFER_TRAINING_MAX_CONTACTS) and score today's offer candidates, unless the backtest
    ranks no better than random; then the offers fall back to product affinity."""
    config = settings.get()
    at = datetime.now(UTC).replace(tzinfo=None)
    frames = {name: pd.DataFrame() for name in TABLES}
    metadata: dict[str, dict[str, Any]] = {name: {} for name in TABLES}
    with warehouse.connect() as connection:
        training = offers.read_training(connection)
        as_of = scalar(connection, "select max(as_of) from marts.observation_window")
        shares = training[["sampled_share", "control_sampled_share"]].head(1).to_dict("records")
        sampled_share, control_sampled_share = shares[0].values() if shares else (None, None)
        sample = training_sample(sampled_share, control_sampled_share)
        if sample != "every member":
            context.log.info(
                f"Uplift model: learns on {len(training):,} campaign members, a sample: {sample} "
                f"(C360_OFFER_TRAINING_MAX_CONTACTS={config.offer_training_max_contacts:,})"
            )
        model_version, used, status = None, False, ""
        try:
            model_version, used, status = _fit_and_score(training, connection, as_of, at, frames, metadata)
        except offers.OfferModelError as error:
            status = f"not fitted: {error}"
        if not used:
            context.log.warning(
                f"Uplift model not used for ranking this run ({status}); offers rank by affinity."
            )
        frames["offer_model_status"] = pd.DataFrame(
            [
                {
                    "as_of": as_of,
                    "model_version": model_version,
                    "used_for_ranking": used,
                    "offer_model_status": status,
                    "training_rows": len(training),
                    "sampled_share": sampled_share,
                    "control_sampled_share": control_sampled_share,
                    "training_sample": sample,
                    "checked_at": at,
                }
            ]
        )
        metadata["offer_model_status"] = {
            "offer_model_status": status,
            "used_for_ranking": used,
            "training_rows": len(training),
            "training_sample": sample,
        }
        write_python_marts(connection, TABLES, REPLACED, frames)
        for name in TABLES:
            rows = scalar(connection, f"select count(*) from marts.{name}")
            yield dg.MaterializeResult(
                asset_key=["marts", name], metadata={"dagster/row_count": rows, **metadata[name]}
            )


def _fit_and_score(training: "pd.DataFrame", connection: duckdb.DuckDBPyConnection, as_of: date | None,
                   at: datetime, frames: "dict[str, pd.DataFrame]",
                   metadata: dict[str, dict[str, Any]]) -> tuple[str, bool, str]:  # fmt: skip
    """Backtest, then (when the backtest beats random) the production fit and the scores, into `frames`;
    returns the production model's version, whether it ranks the offers, and the status line."""
    started = time.perf_counter()
    result = offers.backtest(training)
    backtest_seconds = time.perf_counter() - started
    backtest_id = uuid.uuid4().hex
    backtest_version = f"uplift-two-model-{backtest_id[:8]}"
    earlier = training[training["campaign_start_date"] < result.split_date]
    fits = [
        _fit_row(
            backtest_version, backtest_id, "backtest", earlier, result.model, backtest_seconds, as_of, at
        )
    ]
    frames["offer_model_backtest"] = result.by_share.assign(
        fit_id=backtest_id,
        model_version=backtest_version,
        split_date=result.split_date,
        train_campaigns=result.train_campaigns,
        test_campaigns=result.test_campaigns,
        test_rows=result.test_rows,
        qini=result.qini,
        fitted_at=at,
    )
    at_share = result.by_share.set_index("top_share").loc[RANKING_SHARE]
    ratio = at_share["uplift_ratio_vs_random"]
    metadata["offer_model_backtest"] = {
        "split_date": str(result.split_date),
        "qini": result.qini,
        **{
            f"uplift_ratio_vs_random_top_{round(row.top_share * 100)}": row.uplift_ratio_vs_random
            for row in result.by_share.itertuples()
        },
    }
    beats_random = bool(ratio > 1 and result.qini > 0)
    fit_id = uuid.uuid4().hex
    model_version = f"uplift-two-model-{fit_id[:8]}"
    if not beats_random:
        frames["offer_model_fits"] = pd.DataFrame(fits)
        against_random = (
            f"top {RANKING_SHARE:.0%} uplift {ratio:.2f}x random"
            if math.isfinite(ratio)
            else f"the later campaigns show no uplift overall ({at_share['uplift_all']:+.4f})"
        )
        return (
            backtest_version,
            False,
            f"not used: the backtest ranks no better than random: {against_random}, Qini {result.qini:.4f}",
        )
    started = time.perf_counter()
    model = offers.fit(training)
    fits.append(
        _fit_row(
            model_version, fit_id, "production", training, model, time.perf_counter() - started, as_of, at
        )
    )
    frames["offer_model_fits"] = pd.DataFrame(fits)
    scored = time.perf_counter()
    frames["offer_uplift_scores"], mean_uplift = _score(connection, model, model_version)
    metadata["offer_uplift_scores"] = {
        "model_version": model_version,
        "score_seconds": round(time.perf_counter() - scored, 3),
        "mean_uplift": mean_uplift,
    }
    metadata["offer_model_fits"] = {"model_version": model_version, "product_types": model.product_types}
    return (
        model_version,
        True,
        f"used: backtest top {RANKING_SHARE:.0%} uplift {ratio:.2f}x random, Qini {result.qini:.4f}",
    )


defs = dg.Definitions(assets=[offer_model])
