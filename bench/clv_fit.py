"""CLV fit benchmark: BG/NBD + Gamma-Gamma on N simulated customers (default 1,000,000), fitted on the unique
(frequency, recency, T) rows with weights as the pipeline does, against one row per customer; then scoring.

    python -m bench.clv_fit [--customers N] [--plain-up-to N]

Prints one JSON line of figures (seconds, rows, parameters). The simulation is the generator's exact BG/NBD
process (dagster_project.synthetic.behaviour), so the fitted parameters can be read against the true ones.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pandas as pd

from dagster_project.lib.clv import fit_spend, fit_transactions, score_customers
from dagster_project.synthetic.behaviour import PurchaseModel, clv_summary, simulate_purchases

WINDOW_DAYS = 4 * 365


def customer_summary(customers: int, seed: int) -> pd.DataFrame:
    """(frequency, recency, T, monetary_value) in weeks at day grain, as int_clv_inputs computes them."""
    orders, _ = simulate_purchases(np.random.default_rng(seed), customers, WINDOW_DAYS, PurchaseModel())
    return clv_summary(orders, WINDOW_DAYS).assign(margin_rate=0.3)


def timed(function, *arguments, **keywords):
    started = time.perf_counter()
    result = function(*arguments, **keywords)
    return result, round(time.perf_counter() - started, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--plain-up-to", type=int, default=100_000, help="largest size fitted row by row")
    parser.add_argument("--seed", type=int, default=1)
    arguments = parser.parse_args()

    summary, simulate_seconds = timed(customer_summary, arguments.customers, arguments.seed)
    (transactions, transactions_fitter), weighted_seconds = timed(fit_transactions, summary, "bgnbd")
    (spend, spend_fitter), spend_seconds = timed(fit_spend, summary)
    scores, score_seconds = timed(
        score_customers, summary, transactions_fitter, spend_fitter, 52, 0.10, "week"
    )
    figures: dict[str, object] = {
        "customers_with_a_purchase": len(summary),
        "unique_history_rows": transactions.n_unique_rows,
        "simulate_seconds": simulate_seconds,
        "bgnbd_weighted_fit_seconds": weighted_seconds,
        "gammagamma_weighted_fit_seconds": spend_seconds,
        "score_seconds": score_seconds,
        "bgnbd": transactions.parameters,
        "gammagamma": spend.parameters,
        "true": PurchaseModel().as_dict(),
        "total_clv": round(float(scores["clv"].sum()), 2),
    }
    plain_size = min(arguments.plain_up_to, len(summary))
    (plain, _), plain_seconds = timed(fit_transactions, summary.head(plain_size), "bgnbd", unique_rows=False)
    (subset, _), subset_seconds = timed(fit_transactions, summary.head(plain_size), "bgnbd")
    figures[f"bgnbd_fit_seconds_at_{plain_size}_one_row_per_customer"] = plain_seconds
    figures[f"bgnbd_fit_seconds_at_{plain_size}_unique_rows"] = subset_seconds
    figures["same_parameters"] = bool(
        np.allclose(list(plain.parameters.values()), list(subset.parameters.values()), rtol=1e-4)
    )
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
