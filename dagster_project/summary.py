"""What a run says at its end (`make run`): where the results are, or what failed and what to do next. And
``python -m dagster_project.summary``: every table of the warehouse with its rows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, cast

import dagster as dg

from dagster_project.defs.console import error_text
from dagster_project.lib.settings import Settings
from dagster_project.lib.warehouse import connect, one_row, table_row_counts

FAILURE_CHARACTERS = 700  # of one failure's message in the "What failed" block


def _metadata(result: dg.ExecuteInProcessResult, key: list[str]) -> dict[str, Any]:
    for event in result.get_asset_materialization_events():
        if event.asset_key == dg.AssetKey(key):
            return {name: value.value for name, value in event.materialization.metadata.items()}
    return {}


def success_lines(result: dg.ExecuteInProcessResult, settings: Settings, seconds: float) -> list[str]:
    """The closing account of a successful run: customers, CLV, gates, exports, serving file, where to look."""
    identity = _metadata(result, ["marts", "identity_match_quality"])
    exports = _metadata(result, ["exports", "segments"])
    serving = _metadata(result, ["publish", "serving"])
    clv = _metadata(result, ["marts", "clv_status"])
    checks = result.get_asset_check_evaluations()
    warned = [check for check in checks if not check.passed]
    lines = [
        f"customer360: run {result.run_id} succeeded in {seconds:.0f} s (as_of {exports.get('as_of', '?')})"
    ]
    if identity:
        matched = (
            f"  customers     {identity['customers']:,} from {identity['source_records']:,} source records"
        )
        if "pairwise_precision" in identity:
            matched += (
                f"; identity precision {identity['pairwise_precision']:.4f}, recall "
                f"{identity['pairwise_recall']:.4f} against {identity['truth_file']}"
            )
        lines.append(matched)
    links = _metadata(result, ["intermediate", "int_identity_probabilistic_links"])
    if links.get("mode") == "off":
        lines.append(f"  identity      exact keys only: {links['reason']}")
    elif links:
        lines.append(
            f"  identity      probabilistic pass ({links['mode']}, {links['records_compared']:,} records compared): "
            f"{links['pairs_link']:,} pairs linked, "
            f"{links['pairs_review'] + links['pairs_namesake'] + links['pairs_capped']:,} waiting for review "
            f"(marts.identity_review_queue), {links['pairs_household'] + links['pairs_conflicting_document']:,} "
            "told apart (a household, two CPFs)"
        )
    if clv:
        fitted = clv["clv_status"] == "fitted"
        lines.append(
            f"  CLV           {clv['clv_status']}"
            + (f" ({clv['model']}; backtest {clv['backtest']})" if fitted else "")
        )
    reports = sorted(
        {str(check.metadata["report"].value) for check in checks if check.metadata.get("report")}
    )
    lines.append(
        f"  gates         {len(checks) - len(warned)} of {len(checks)} checks passed"
        + (f", {len(warned)} warned" if warned else "")
        + (f"; report {reports[-1]}" if reports else "")
    )
    folder = exports.get("export_folder")
    if folder:
        lines.append(f"  exports       {folder}/ (manifest.json)")
        manifest = json.loads((Path(str(folder)) / "manifest.json").read_text(encoding="utf-8"))
        for entry in manifest["segments"]:
            lines.append(
                f"    {entry['file']:<36}{entry['rows']:>9,} rows  ({entry['opted_out_removed']:,} opted out of "
                f"{entry['channel']}, {entry['open_complaint_removed']:,} with an open complaint, "
                f"{entry.get('unprofitable_removed', 0):,} not worth the contact: removed)"
            )
    if serving:
        lines += _campaign_lines(Path(str(serving["path"])))
        lines += _offer_lines(Path(str(serving["path"])))
        lines.append(
            f"  serving file  {serving['path']} ({len(serving['tables'])} tables, for BI tools read-only)"
        )
    retention = _metadata(result, ["exports", "retention"])
    if retention.get("retention_days"):
        removed = retention.get("removed") or {}
        lines.append(
            f"  retention     {retention['retention_days']} days: "
            + (
                ", ".join(f"{count:,} {kind.replace('_', ' ')}" for kind, count in sorted(removed.items()))
                or "nothing"
            )
            + " older removed (raw._retention_log)"
        )
    lines += erasure_lines(result)
    lines.append(f"  warehouse     {settings.warehouse} (every table: python -m dagster_project.summary)")
    lines.append(engine_line(settings))
    lines.append("  full log      make dev -> Runs, or C360_LOG_LEVEL=debug make run")
    return lines


def engine_line(settings: Settings) -> str:
    """What ran the dbt models (C360_ENGINE)."""
    if settings.engine == "duckdb":
        return "  engine        duckdb (the dbt models ran in the warehouse file)"
    where = settings.spark_remote or f"{settings.spark_master}, tables in {settings.spark_home}"
    return f"  engine        spark ({where}); the warehouse file holds copies of what it built"


def erasure_lines(result: dg.ExecuteInProcessResult) -> list[str]:
    """Erasure requests executed and rows of erased people delivered again, from every ingest step's metadata."""
    statuses: dict[str, int] = {}
    swept, reports = 0, []
    for event in result.get_asset_materialization_events():
        metadata = event.materialization.metadata
        if "erasure" not in metadata:
            continue
        erasure = cast(dict[str, Any], metadata["erasure"].value)
        for request in erasure["requests"]:
            statuses[request["status"]] = statuses.get(request["status"], 0) + 1
        swept += sum(erasure["redelivered_rows_removed"].values())
        if "erasure_report" in metadata:
            reports.append(str(metadata["erasure_report"].value))
    if not statuses and not swept:
        return []
    done = ", ".join(f"{count} {status}" for status, count in sorted(statuses.items()))
    return [
        f"  erasure       {sum(statuses.values())} request(s){f' ({done})' if done else ''}"
        + (f", {swept:,} row(s) of erased people delivered again removed" if swept else "")
        + f"; raw._erasure_log, report {reports[-1]}"
    ]


def _campaign_lines(serving: Path) -> list[str]:
    """The campaigns' verdicts and what those measured against a control group brought, as published."""
    with connect(serving, read_only=True) as connection:
        campaigns, positive, negative, not_significant, no_control, net_profit = one_row(
            connection,
            """
            select
                count(*),
                count(*) filter (where verdict = 'positive'),
                count(*) filter (where verdict = 'negative'),
                count(*) filter (where verdict = 'not_significant'),
                count(*) filter (where verdict = 'no_control'),
                coalesce(sum(net_incremental_profit) filter (where verdict <> 'no_control'), 0)
            from marts.campaign_performance
            """,
        )
    if not campaigns:
        return []
    return [
        f"  campaigns     {campaigns:,} measured: {positive:,} positive, {negative:,} negative, {not_significant:,} "
        f"not significant, {no_control:,} without a control group; net incremental profit R$ {net_profit:,.2f} "
        "(marts.campaign_performance)"
    ]


def _offer_lines(serving: Path) -> list[str]:
    """How many customers have an offer and by what it is ranked, as published."""
    with connect(serving, read_only=True) as connection:
        offered, held_out, at_desk, status = one_row(
            connection,
            """
            select
                count(*) filter (where is_eligible and not is_holdout),
                count(*) filter (where is_eligible and is_holdout),
                (select count(*) from marts.service_desk_offers where eligibility = 'eligible'),
                (select any_value(offer_model_status) from marts.offer_model_status)
            from marts.customer_next_best_offer
            """,
        )
    return [
        f"  offers        {offered:,} customers with a next best offer ({held_out:,} more held out), {at_desk:,} "
        f"waiting at the service desk (marts.customer_next_best_offer); uplift model {status}"
    ]


def failure_lines(result: dg.ExecuteInProcessResult, settings: Settings, seconds: float) -> list[str]:
    """The "What failed" block: each failed step or blocking check with its message, where the details are
    and what to do next."""
    lines = [f"customer360: run {result.run_id} FAILED after {seconds:.0f} s", "", "What failed"]
    ingest = gates = other = False
    for event in result.get_step_failure_events():
        error = event.step_failure_data.error
        if error is not None and error.cls_name == "DagsterAssetCheckFailedError":
            continue  # said below, by the check itself
        step = event.step_key or "?"
        ingest = ingest or step.startswith("raw__")
        other = other or not step.startswith("raw__")
        lines.append(f"  step {step}: {error_text(error, FAILURE_CHARACTERS)}")
    reports = []
    for check in result.get_asset_check_evaluations():
        if not check.passed and check.severity == dg.AssetCheckSeverity.ERROR:
            gates = True
            lines.append(
                f"  check {check.check_name} on {check.asset_key.to_user_string()}: {check.description}"
            )
            if check.metadata.get("report"):
                reports.append(str(check.metadata["report"].value))
    lines.append("Details")
    if ingest:
        lines.append("  select file_path, message from raw._load_log where status = 'rejected';")
        lines.append("  select column_name, reason, count(*) from raw._quarantine group by all")
    if reports:
        lines.append(f"  validation report: {reports[-1]}")
    lines.append(f"  make dev -> Runs -> {result.run_id}, or C360_LOG_LEVEL=debug make run")
    lines.append("Next")
    if ingest:
        lines.append(
            "  fix or replace the file named above (or declare its dialect in sources.yml), then make run"
        )
        lines.append("  again: files already loaded are not loaded twice")
    if gates:
        lines.append(
            "  the report lists each failed expectation with its counts; fix the data at its source,"
        )
        lines.append("  deliver it again and make run")
    if other and not ingest and not gates:
        lines.append(
            "  read the message above; make run again once its cause is fixed (the run recovers by itself)"
        )
    lines.append(
        f"  nothing was delivered: the exports and serving file ({settings.serving}) are the last good run's"
    )
    erased = erasure_lines(result)
    if erased:
        lines += ["Executed all the same", *erased]
    return lines


def main() -> None:
    settings = Settings.load()
    if not settings.warehouse.exists():
        raise SystemExit(f"no warehouse at {settings.warehouse}: run `make run` first")
    with connect(settings.warehouse, read_only=True) as connection:
        counts = table_row_counts(connection)
    print(f"warehouse: {settings.warehouse}\nraw extracts: {settings.raw_dir}\n")
    print(f"{'relation':<48}{'kind':<7}{'rows':>12}")
    for schema, name, kind, rows in counts:
        print(f"{schema + '.' + name:<48}{kind:<7}{rows:>12,}")


if __name__ == "__main__":
    main()
