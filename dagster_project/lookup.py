"""One customer's current offers, found by any source system's id, from the serving file (docs/delivery.md):

    python -m dagster_project.lookup --source ecommerce --id 100123
    python -m dagster_project.lookup --source sac --id SAC-00000042 --json

What a service desk or a CRM screen asks while the customer is on the line: the next best offer (or why there
is none: an open complaint shows its recovery allowance), the three best offers, and the offer waiting at the
next service contact. Reads the published serving file read-only (C360_SERVING, or --serving), never the
warehouse, so it never waits for a run; prints ids, offers and reasons, no personal data.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import duckdb

from dagster_project.lib.settings import Settings

NEXT_BEST_OFFER_COLUMNS = (
    "eligibility",
    "offer_product_type",
    "channel",
    "expected_incremental_profit",
    "reason",
    "complaint_recovery_allowance",
    "model_version",
    "is_holdout",
    "valid_from",
)


def _rows(connection: duckdb.DuckDBPyConnection, query: str, parameters: list) -> list[dict]:
    cursor = connection.execute(query, parameters)
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def lookup(serving: Path, source_system: str, source_customer_id: str) -> dict | None:
    """The customer's id and offers, or None when no customer has that source id in the serving file."""
    with duckdb.connect(str(serving), read_only=True) as connection:
        found = connection.execute(
            "select customer_id from marts.customer_id_map where source_system = ? and source_customer_id = ?",
            [source_system, source_customer_id.strip()],
        ).fetchone()
        if found is None:
            return None
        customer_id = int(found[0])
        columns = ", ".join(NEXT_BEST_OFFER_COLUMNS)
        (next_best,) = _rows(
            connection,
            f"select {columns} from marts.customer_next_best_offer where customer_id = ?",
            [customer_id],
        ) or [{}]
        offers = _rows(
            connection,
            "select offer_rank, offer_product_type, channel, expected_incremental_profit, reason "
            "from marts.customer_offers where customer_id = ? order by offer_rank",
            [customer_id],
        )
        at_service_desk = _rows(
            connection,
            "select offer_product_type, expected_incremental_profit, reason, service_tier, service_route, "
            "complaint_recovery_allowance from marts.service_desk_offers where customer_id = ?",
            [customer_id],
        )
    return {
        "customer_id": customer_id,
        "next_best_offer": next_best,
        "offers": offers,
        "at_next_service_contact": at_service_desk[0] if at_service_desk else None,
    }


def _text(answer: dict) -> list[str]:
    best = answer["next_best_offer"]
    lines = [f"customer {answer['customer_id']}"]
    if best.get("eligibility") == "eligible":
        lines.append(
            f"  next best offer  {best['offer_product_type']} by {best['channel']} "
            f"(R$ {best['expected_incremental_profit']:.2f} expected; {best['model_version']}; "
            f"valid from {best['valid_from']}{'; HOLDOUT: do not send' if best['is_holdout'] else ''})"
        )
    else:
        lines.append(f"  no offer         {best.get('eligibility', 'not in this serving file')}")
    if best.get("reason"):
        lines.append(f"  why              {best['reason']}")
    for offer in answer["offers"][1:]:
        lines.append(
            f"  offer {offer['offer_rank']}          {offer['offer_product_type']} by {offer['channel']} "
            f"(R$ {offer['expected_incremental_profit']:.2f})"
        )
    desk = answer["at_next_service_contact"]
    if desk:
        offer = desk["offer_product_type"] or "none"
        lines.append(
            f"  at the desk      {offer}; {desk['service_tier']} tier, route {desk['service_route']}"
            + (f"; recovery allowance R$ {desk['complaint_recovery_allowance']:.2f}"
               if desk["complaint_recovery_allowance"] is not None else "")
        )  # fmt: skip
        if desk["reason"]:
            lines.append(f"                   {desk['reason']}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", required=True, help="source system, e.g. ecommerce, loja, sac, crm")
    parser.add_argument("--id", required=True, help="the customer's id in that system")
    parser.add_argument("--serving", type=Path, help="serving file (default: C360_SERVING)")
    parser.add_argument("--json", action="store_true", help="print JSON (for a CRM screen)")
    arguments = parser.parse_args(argv)
    # Binding a Python value makes DuckDB import pandas when it is installed: a second of the answer's time,
    # for nothing this command needs. Marked absent here, DuckDB binds without it.
    sys.modules.setdefault("pandas", None)  # type: ignore[arg-type]  # None: "not installed", by design
    serving = arguments.serving or Settings.load().serving
    if not serving.exists():
        print(f"no serving file at {serving}: run `make run` first", file=sys.stderr)
        return 2
    answer = lookup(serving, arguments.source, arguments.id)
    if answer is None:
        print(f"no customer with {arguments.source} id {arguments.id!r} in {serving}", file=sys.stderr)
        return 1
    print(json.dumps(answer, default=str, indent=2) if arguments.json else "\n".join(_text(answer)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
