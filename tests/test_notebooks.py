"""The notebooks in notebooks/: committed without outputs, and executed end to end against a published serving
file so that they never rot."""

from __future__ import annotations

import re
from pathlib import Path

import duckdb
import nbformat
import pytest
from nbclient import NotebookClient

from dagster_project.paths import ROOT

NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def execute(notebook: Path, serving: Path, monkeypatch: pytest.MonkeyPatch) -> nbformat.NotebookNode:
    """Run every cell in a fresh kernel, as `jupyter execute` would, with C360_SERVING pointing at `serving`."""
    monkeypatch.setenv("C360_SERVING", str(serving))  # the kernel inherits this process's environment
    document = nbformat.read(notebook, as_version=4)
    NotebookClient(
        document, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(notebook.parent)}}
    ).execute()
    return document


def outputs(document: nbformat.NotebookNode) -> tuple[int, str]:
    """How many figures the notebook drew, and everything it printed."""
    figures, printed = 0, []
    for cell in document.cells:
        for output in cell.get("outputs", []):
            figures += "image/png" in output.get("data", {})
            printed.append(output.get("text", ""))
    return figures, "\n".join(printed)


def test_the_notebooks_are_numbered_and_committed_without_outputs():
    assert [notebook.name for notebook in NOTEBOOKS] == [
        "01_customer_base.ipynb",
        "02_clv_diagnostics.ipynb",
        "03_campaigns_and_service.ipynb",
    ]
    for notebook in NOTEBOOKS:
        code = [cell for cell in nbformat.read(notebook, as_version=4).cells if cell.cell_type == "code"]
        assert code and all(not cell.outputs and cell.execution_count is None for cell in code), notebook.name


def test_the_customer_base_notebook_runs_on_the_published_file(second_run, monkeypatch):
    serving = second_run[0] / "serving.duckdb"  # two RFM snapshots, so the migration is drawn too
    figures, printed = outputs(execute(NOTEBOOKS[0], serving, monkeypatch))
    assert figures == 4  # segment sizes, migration, value tiers, whale curve
    with duckdb.connect(str(serving), read_only=True) as reader:
        customers, below_zero = reader.execute(
            "select count(*), round(100 * avg((profit < 0)::int)) from marts.customer_value"
        ).fetchone()
    assert f"{customers:,} customers; the most profitable" in printed
    assert f"; {below_zero:.0f}% have negative profit." in printed


def test_the_clv_diagnostics_notebook_runs_on_the_published_file(second_run, monkeypatch):
    serving = second_run[0] / "serving.duckdb"
    figures, printed = outputs(execute(NOTEBOOKS[1], serving, monkeypatch))
    assert figures == 4
    with duckdb.connect(str(serving), read_only=True) as reader:
        predicted, actual = reader.execute(
            "select predicted_total, actual_total from marts.clv_backtest order by created_at desc limit 1"
        ).fetchone()
        scored = reader.execute("select count(*) from marts.customer_clv").fetchone()[0]
    assert f"predicted {predicted:,.0f} vs actual {actual:,} repeat purchase days" in printed
    assert f"{scored:,} customers, total CLV" in printed
    at_end = re.search(r"At the end of calibration: actual ([\d,]+), expected ([\d,]+)\.", printed)
    actual_at_end, expected_at_end = (int(group.replace(",", "")) for group in at_end.groups())
    # The model tracks the calibration it was fitted on.
    assert abs(expected_at_end / actual_at_end - 1) < 0.15


def test_the_campaigns_and_service_notebook_runs_on_the_published_file(second_run, monkeypatch):
    serving = second_run[0] / "serving.duckdb"
    figures, printed = outputs(execute(NOTEBOOKS[2], serving, monkeypatch))
    assert figures == 4  # forest plot, incremental profit, heat map, service attribution
    with duckdb.connect(str(serving), read_only=True) as reader:
        campaigns, contacted, measured, net = reader.execute(
            "select count(*), sum(contacted), count(*) filter (where verdict <> 'no_control'), "
            "sum(net_incremental_profit) filter (where verdict <> 'no_control') from marts.campaign_performance"
        ).fetchone()
        contacts, revenue_after = reader.execute(
            "select sum(contacts), sum(revenue_after) from marts.service_sales_attribution"
        ).fetchone()
    assert f"{campaigns:,} campaigns, {contacted:,} customers contacted" in printed
    assert (
        f"{measured:,} campaigns measured against a control group: net incremental profit R$ {net:,.2f}"
        in printed
    )
    assert (
        f"{contacts:,} service contacts; sales within 14 days after them R$ {revenue_after:,.2f}" in printed
    )
