"""A hand-made dataset of 6 customers (5 buyers, 3 of them repeat buyers): too little for a CLV fit, plenty
for everything else. The run succeeds, builds and publishes every mart, segment and export, and says why
there is no CLV."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from tests.conftest import copy_of, run_pipeline
from tests.tiny_dataset import write_tiny_dataset


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dg.ExecuteInProcessResult]:
    folder = tmp_path_factory.mktemp("tiny")
    write_tiny_dataset(folder / "raw")
    return folder, run_pipeline(folder / "raw", folder / "warehouse.duckdb")


def test_without_enough_repeat_buyers_everything_but_clv_is_built_and_published(tiny_run):
    folder, result = tiny_run
    assert result.success
    reason = "3 repeat buyers in the production cut, 30 needed (C360_CLV_MIN_REPEAT_BUYERS)"
    with duckdb.connect(str(folder / "warehouse.duckdb"), read_only=True) as connection:
        counts = {
            table: connection.execute(f"select count(*) from marts.{table}").fetchone()[0]
            for table in ("customer_rfmt", "customer_value", "customer_360", "customer_clv", "clv_model_fits")
        }
        status = connection.execute(
            "select fitted, clv_status, repeat_buyers from marts.clv_status"
        ).fetchone()
        in_360 = connection.execute(
            "select count(*), count(clv), count(p_alive), count(distinct clv_status), any_value(clv_status) "
            "from marts.customer_360"
        ).fetchone()
        tiers = dict(
            connection.execute("select value_tier, count(*) from marts.customer_value group by 1").fetchall()
        )
    assert counts == {
        "customer_rfmt": 5,
        "customer_value": 6,
        "customer_360": 6,
        "customer_clv": 0,
        "clv_model_fits": 0,
    }
    assert status == (False, f"not fitted: {reason}", 3)
    assert in_360 == (6, 0, 0, 1, f"not fitted: {reason}")
    assert "most_growable" not in tiers and sum(tiers.values()) == 6
    manifest = json.loads(next((folder / "exports").glob("2025-*/manifest.json")).read_text())
    assert {entry["name"] for entry in manifest["segments"]} >= {
        "champions_loyalty_email",
        "most_growable_cross_sell",
    }
    with duckdb.connect(str(folder / "serving.duckdb"), read_only=True) as serving:
        assert serving.execute("select count(*) from marts.customer_360").fetchone() == (6,)


def test_the_clv_check_warns_with_the_reason_instead_of_blocking(tiny_run):
    _, result = tiny_run
    (clv_check,) = [
        check
        for check in result.get_asset_check_evaluations()
        if check.asset_key == dg.AssetKey(["marts", "customer_clv"])
    ]
    assert not clv_check.passed and clv_check.severity == dg.AssetCheckSeverity.WARN
    assert "3 repeat buyers in the production cut, 30 needed" in clv_check.description
    others = [check for check in result.get_asset_check_evaluations() if check is not clv_check]
    assert others and all(check.passed for check in others)
    (customer_clv,) = [
        event
        for event in result.asset_materializations_for_node("clv")
        if event.asset_key == dg.AssetKey(["marts", "customer_clv"])
    ]
    assert customer_clv.metadata["most_growable"].value == "left empty: no CLV this run"


def test_a_run_without_clv_then_one_with_it_fills_the_clv_columns_again(built_sample, tmp_path):
    """An established warehouse: a run that cannot fit (here: the minimum set above the repeat buyers) still
    builds and exports everything else; the next run with enough data fills the CLV columns again."""
    folder = copy_of(built_sample[0], tmp_path / "built")
    warehouse = folder / "warehouse.duckdb"

    def state() -> tuple:
        with duckdb.connect(str(warehouse), read_only=True) as connection:
            return connection.execute(
                """
                select (select fitted from marts.clv_status), count(*), count(clv),
                    count(*) filter (where value_tier = 'most_growable')
                from marts.customer_value
                """
            ).fetchone()

    without = run_pipeline(folder / "raw", warehouse, clv_min_repeat_buyers="1000000")
    assert without.success
    fitted, customers, with_clv, growable = state()
    assert (fitted, with_clv, growable) == (False, 0, 0) and customers > 1000
    again = run_pipeline(folder / "raw", warehouse)
    assert again.success
    fitted, customers_again, with_clv, growable = state()
    assert fitted and with_clv == customers_again == customers and growable > 0
