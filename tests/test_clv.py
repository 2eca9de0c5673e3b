"""Lifetime value through the whole pipeline: the CDNOW 1/10 sample's transaction log (2,357 customers, the data
of Fader, Hardie & Lee 2005) delivered as a purchases extract reproduces the published fits and forecast."""

from __future__ import annotations

import importlib.resources
import json
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pytest

from tests.conftest import run_pipeline

CDNOW_LOG = importlib.resources.files("lifetimes") / "datasets" / "CDNOW_sample.txt"


def write_cdnow_extract(raw: Path) -> int:
    """The CDNOW log (customer, customer number, yyyymmdd, CDs, dollars) as a canonical purchases file."""
    log = pd.read_csv(
        CDNOW_LOG,
        sep=r"\s+",
        header=None,
        names=["customer", "number", "date", "quantity", "amount"],
        dtype={"customer": str, "date": str},
    )
    extract = pd.DataFrame(
        {
            "order_id": [f"cd{row}" for row in range(len(log))],
            "source_customer_id": log["customer"],
            "purchased_at": pd.to_datetime(log["date"], format="%Y%m%d").dt.strftime("%Y-%m-%d"),
            "amount": log["amount"].map("{:.2f}".format),
            "quantity": log["quantity"],
        }
    )
    folder = raw / "purchases" / "cdnow"
    folder.mkdir(parents=True)
    extract.to_csv(folder / "transactions.csv", index=False)
    return len(extract)


@pytest.fixture(scope="module")
def cdnow_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dg.ExecuteInProcessResult]:
    folder = tmp_path_factory.mktemp("cdnow")
    assert write_cdnow_extract(folder / "raw") == 6919
    warehouse = folder / "warehouse.duckdb"
    result = run_pipeline(
        folder / "raw", warehouse, as_of="1998-06-30", clv_time_unit="week", clv_holdout="39"
    )
    assert result.success
    return warehouse, result


def _fits(warehouse: Path) -> dict[tuple[str, str], dict]:
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        rows = connection.execute(
            "select fit_kind, model, parameters, n_customers, time_unit, calibration_end, as_of "
            "from marts.clv_model_fits"
        ).fetchall()
    return {
        (kind, model): {
            "parameters": json.loads(parameters),
            "customers": customers,
            "window": (unit, str(cal), str(end)),
        }
        for kind, model, parameters, customers, unit, cal, end in rows
    }


def test_the_backtest_reproduces_fader_hardie_lee(cdnow_run):
    warehouse, _ = cdnow_run
    fits = _fits(warehouse)
    backtest_bgnbd, backtest_spend = fits[("backtest", "bgnbd")], fits[("backtest", "gammagamma")]
    assert backtest_bgnbd["parameters"] == pytest.approx(
        {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}, abs=0.001
    )
    assert backtest_spend["parameters"] == pytest.approx({"p": 6.25, "q": 3.74, "v": 15.44}, abs=0.01)
    assert backtest_bgnbd["customers"] == 2357 and backtest_spend["customers"] == 946
    assert backtest_bgnbd["window"] == ("week", "1997-09-30", "1998-06-30")  # 39 weeks of calibration
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        calibration_end, holdout_end, predicted, actual, customers = connection.execute(
            "select calibration_end, holdout_end, predicted_total, actual_total, customers from marts.clv_backtest"
        ).fetchone()
        by_frequency = connection.execute(
            "select calibration_frequency, customers, actual_purchases "
            "from marts.clv_backtest_by_frequency order by 1"
        ).fetchall()
    # Weeks 40-78: the sum of the conditional expectations against the repeat purchase days that happened.
    assert (str(calibration_end), str(holdout_end), customers) == ("1997-09-30", "1998-06-30", 2357)
    assert predicted == pytest.approx(1653.4, abs=0.1) and actual == 1882
    assert by_frequency[0][:2] == (0, 1411)  # 1,411 of the 2,357 made no repeat purchase in calibration
    assert sum(row[2] for row in by_frequency) == 1882


def test_every_purchasing_customer_gets_a_clv_in_the_warehouse_and_the_360(cdnow_run):
    warehouse, result = cdnow_run
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        customers, in_range, non_negative, horizon, unit, as_of = connection.execute(
            """
            select count(*), count(*) filter (where p_alive between 0 and 1),
                count(*) filter (where clv >= 0 and expected_purchases >= 0 and expected_avg_spend > 0),
                any_value(clv_horizon), any_value(time_unit), any_value(as_of)
            from marts.customer_clv
            """
        ).fetchone()
        in_360 = connection.execute(
            "select count(*) from marts.customer_360 join marts.customer_clv using (customer_id) "
            "where customer_360.clv = round(customer_clv.clv, 4) and customer_360.p_alive = customer_clv.p_alive"
        ).fetchone()[0]
        production = connection.execute(
            "select n_customers from marts.clv_model_fits where fit_kind = 'production' and model = 'bgnbd'"
        ).fetchone()[0]
        statuses = connection.execute("select distinct clv_status from marts.customer_360").fetchall()
        fitted = connection.execute("select fitted, repeat_buyers, backtest from marts.clv_status").fetchall()
    assert customers == in_range == non_negative == in_360 == production == 2357
    assert statuses == [("fitted",)]
    assert fitted[0][0] is True and fitted[0][1] > 30 and fitted[0][2] == "made"
    assert (horizon, unit, str(as_of)) == (52, "week", "1998-06-30")
    metadata = result.asset_materializations_for_node("clv")
    customer_clv = next(
        event for event in metadata if event.asset_key == dg.AssetKey(["marts", "customer_clv"])
    )
    correlation = customer_clv.metadata["frequency_monetary_correlation"].value
    assert -0.3 < correlation < 0.3  # Gamma-Gamma's independence assumption holds on CDNOW
