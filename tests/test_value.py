"""RFM history and customer value on the real pipeline: two snapshots and their segment migration."""

from __future__ import annotations

from pathlib import Path

import duckdb
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
