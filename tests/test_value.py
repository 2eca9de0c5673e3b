"""RFM history and customer value on the real pipeline: two snapshots and their segment migration."""

from __future__ import annotations

import itertools
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest


@pytest.fixture(scope="module")
def two_snapshots(second_run) -> Path:
    """The session's run (as_of = the latest event loaded, 2025-12-30), then a run reproducing 2025-06-30."""
    folder, result, _ = second_run
    assert result.success
    return folder / "warehouse.duckdb"


def test_segment_migration_adds_up_to_the_customers_in_both_snapshots(two_snapshots):
    with duckdb.connect(str(two_snapshots), read_only=True) as connection:
        snapshots = connection.execute(
            "select as_of, count(*) from marts.customer_rfmt_history group by all order by 1"
        ).fetchall()
        in_both = connection.execute(
            """
            select count(*) from marts.customer_rfmt_history as earlier
            inner join marts.customer_rfmt_history as later
                on earlier.customer_id = later.customer_id
            where earlier.as_of = date '2025-06-30' and later.as_of = date '2025-12-30'
            """
        ).fetchone()[0]
        migration = connection.execute(
            "select from_as_of, to_as_of, sum(customers), count(distinct from_segment) "
            "from marts.rfm_segment_migration group by all"
        ).fetchall()
        current = connection.execute(
            "select count(*), min(as_of), max(as_of) from marts.customer_rfmt"
        ).fetchone()
    assert [str(as_of) for as_of, _ in snapshots] == ["2025-06-30", "2025-12-30"]
    assert snapshots[0][1] < snapshots[1][1]  # more customers have bought by the later date
    (from_as_of, to_as_of, moved, from_segments) = migration[0]
    assert (str(from_as_of), str(to_as_of)) == ("2025-06-30", "2025-12-30")
    assert moved == in_both > 0 and from_segments > 5
    assert current == (snapshots[0][1], snapshots[0][0], snapshots[0][0])  # the last run's as_of


def test_value_tiers_follow_profit_and_shares(two_snapshots):
    with duckdb.connect(str(two_snapshots), read_only=True) as connection:
        tiers = dict(
            connection.execute("select value_tier, count(*) from marts.customer_value group by 1").fetchall()
        )
        non_negative = connection.execute(
            "select count(*) from marts.customer_value where profit >= 0"
        ).fetchone()[0]
        lowest_valuable, highest_other = connection.execute(
            """
            select
                min(profit) filter (where value_tier = 'most_valuable'),
                max(profit) filter (where value_tier in ('most_growable', 'maintain'))
            from marts.customer_value
            """
        ).fetchone()
        profile_tiers = connection.execute(
            "select count(*) from marts.customer_360 join marts.customer_value using (customer_id) "
            "where customer_360.value_tier is distinct from customer_value.value_tier"
        ).fetchone()[0]
    assert tiers["most_valuable"] == -(-non_negative * 20 // 100)  # ceil(20% of customers with profit >= 0)
    assert lowest_valuable >= highest_other
    assert tiers["below_zero"] > 0 and profile_tiers == 0


def test_service_sales_attribution_equals_a_pandas_recomputation(built_sample):
    """Each service contact's customer's sales in the 14 days after it and in the 14 days before it, grouped by
    channel, handler, type and month: recomputed here from the two facts, independently of the mart's SQL."""
    warehouse = built_sample[0] / "warehouse.duckdb"
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        contacts = connection.execute(
            "select protocol, source_system, customer_id, channel, handled_by, interaction_type, occurred_at "
            "from marts.fct_service_interactions"
        ).df()
        purchases = connection.execute(
            "select customer_id, purchased_at, amount::double as amount, product_type, is_return "
            "from marts.fct_purchases"
        ).df()
        as_of = pd.Timestamp(connection.execute("select as_of from marts.observation_window").fetchone()[0])
        mart = connection.execute(
            "select * exclude (attribution_complete, attribution_days, as_of) from marts.service_sales_attribution"
        ).df()
    window = pd.Timedelta(days=14)
    contacts = contacts[contacts["occurred_at"].dt.normalize() <= as_of]
    sales = purchases[~purchases["is_return"] & (purchases["purchased_at"].dt.normalize() <= as_of)].copy()
    first_of_type = (
        purchases[~purchases["is_return"]].groupby(["customer_id", "product_type"])["purchased_at"].min()
    )
    sales["first_of_type_at"] = sales.set_index(["customer_id", "product_type"]).index.map(first_of_type)
    pairs = contacts.dropna(subset=["customer_id"]).merge(sales, on="customer_id")
    after = (pairs["purchased_at"] > pairs["occurred_at"]) & (
        pairs["purchased_at"] <= pairs["occurred_at"] + window
    )
    before = (pairs["purchased_at"] < pairs["occurred_at"]) & (
        pairs["purchased_at"] >= pairs["occurred_at"] - window
    )
    new_type = after & (pairs["first_of_type_at"] > pairs["occurred_at"])
    pairs = pairs.assign(
        purchases_after=after, revenue_after=pairs["amount"].where(after, 0.0),
        purchases_before=before, revenue_before=pairs["amount"].where(before, 0.0),
        new_type=pairs["product_type"].where(new_type),
    )  # fmt: skip
    per_contact = (
        pairs.groupby(["source_system", "protocol"])
        .agg(
            purchases_after=("purchases_after", "sum"),
            revenue_after=("revenue_after", "sum"),
            purchases_before=("purchases_before", "sum"),
            revenue_before=("revenue_before", "sum"),
            new_product_types=("new_type", "nunique"),
        )
        .reindex(pd.MultiIndex.from_frame(contacts[["source_system", "protocol"]]), fill_value=0)
        .reset_index()
    )
    per_contact = contacts.merge(per_contact, on=["source_system", "protocol"])
    per_contact["month"] = per_contact["occurred_at"].dt.to_period("M").dt.to_timestamp()
    expected = (
        per_contact.groupby(["channel", "handled_by", "interaction_type", "month"], dropna=False)
        .agg(
            contacts=("protocol", "size"),
            customers=("customer_id", "nunique"),
            purchases_after=("purchases_after", "sum"),
            revenue_after=("revenue_after", "sum"),
            purchases_before=("purchases_before", "sum"),
            revenue_before=("revenue_before", "sum"),
            buying_share_after=("purchases_after", lambda n: (n > 0).mean()),
            new_product_types_per_contact=("new_product_types", "mean"),
        )
        .reset_index()
    )
    keys = ["channel", "handled_by", "interaction_type", "month"]
    mart["month"] = pd.to_datetime(mart["month"])
    both = expected.merge(mart, on=keys, how="outer", suffixes=("", "_mart"), indicator=True)
    assert (both["_merge"] == "both").all() and len(both) > 50
    for column in ["contacts", "customers", "purchases_after", "purchases_before"]:
        assert (both[column] == both[f"{column}_mart"]).all(), column
    for column in ["revenue_after", "revenue_before", "buying_share_after", "new_product_types_per_contact"]:
        assert np.allclose(both[column], both[f"{column}_mart"].astype(float), atol=0.005), column
    assert both["revenue_after"].sum() > 0 and both["new_product_types_per_contact"].max() > 0


def test_a_run_ends_with_the_campaigns_verdicts_and_their_net_incremental_profit(built_sample):
    from dagster_project.summary import _campaign_lines

    serving = built_sample[0] / "serving.duckdb"
    with duckdb.connect(str(serving), read_only=True) as reader:
        verdicts = dict(
            reader.execute("select verdict, count(*) from marts.campaign_performance group by 1").fetchall()
        )
        net = reader.execute(
            "select sum(net_incremental_profit) from marts.campaign_performance where lift_abs is not null"
        ).fetchone()[0]
    (line,) = _campaign_lines(serving)
    assert line == (
        f"  campaigns     {sum(verdicts.values()):,} measured: {verdicts.get('positive', 0):,} positive, "
        f"{verdicts.get('negative', 0):,} negative, {verdicts.get('not_significant', 0):,} not significant, "
        f"{verdicts['no_control']:,} without a control group; net incremental profit R$ {net:,.2f} "
        "(marts.campaign_performance)"
    )


def test_households_are_the_people_the_generator_housed_together(built_sample, generated_dataset):
    """Pairs of customers put in one household, against the people the generator gave one address: every pair
    found is right, and nine in ten or more are found (a customer whose records have neither an address nor a
    phone has no household key)."""
    with duckdb.connect(str(built_sample[0] / "warehouse.duckdb"), read_only=True) as connection:
        records = connection.execute("select * from marts.customer_id_map").df()
        households = connection.execute("select customer_id, household_id from marts.customer_360").df()
    truth = generated_dataset / "truth"
    identity = pd.read_csv(truth / "identity.csv", dtype=str)
    persons = pd.read_csv(truth / "persons.csv", dtype=str)[["person_id", "household_id"]]
    person_of = (
        records.merge(identity, on=["source_system", "source_customer_id"])
        .groupby("customer_id")["person_id"]
        .agg(lambda people: people.mode().iloc[0])
    )
    customers = households.assign(person_id=households["customer_id"].map(person_of)).merge(
        persons.rename(columns={"household_id": "true_household_id"}), on="person_id"
    )

    def pairs(key: str) -> set[tuple[int, int]]:
        together = customers.dropna(subset=[key]).groupby(key)["customer_id"]
        return {pair for members in together for pair in itertools.combinations(sorted(members[1]), 2)}

    found, true = pairs("household_id"), pairs("true_household_id")
    assert len(true) >= 30
    assert len(found & true) / len(found) >= 0.98  # precision
    assert len(found & true) / len(true) >= 0.9  # recall
