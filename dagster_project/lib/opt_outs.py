"""Opt-outs honoured at once (docs/delivery.md): an opt-out that loads is applied to what is already out there —
every export folder and the serving file's segment tables — in the same run, before anything else can fail.

A run stops at the first failed step or gate; the delivery that would refresh the exports comes last. Without
this, one bad file delivered beside a valid opt-out would keep the opted-out customer in the marketers' files
until someone fixed the other file. The consent codes are read with the vocabulary the staging model uses
(lib/gates.vocabulary_key, held equal to dbt's macro by a test) and the customer by the last build's
marts.customer_id_map: a record no build has seen yet cannot be in a delivered file.
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from dagster_project.lib.exports import SEGMENT_SCHEMA, remove_customers
from dagster_project.lib.gates import canonical_values, vocabulary_key
from dagster_project.lib.lazy import lazy_module
from dagster_project.lib.publish import attached, partial_name
from dagster_project.lib.warehouse import has_table, scalar

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = lazy_module("pandas")


@dataclass(frozen=True)
class Honoured:
    opt_outs: int  # (customer, channel) pairs newly opted out
    removed: dict[str, int]  # where -> rows removed ("exports/<as_of>/<file>", "serving segments.<name>")

    def summary(self) -> str:
        where = ", ".join(f"{place}: {rows}" for place, rows in self.removed.items()) or "nothing to remove"
        return f"{self.opt_outs} new opt-out(s) applied to what was already delivered ({where})"


def new_opt_outs(connection: duckdb.DuckDBPyConnection, loaded_at: datetime) -> dict[str, set[int]]:
    """Channel -> customers whose consent rows loaded at `loaded_at` make their latest statement an opt-out
    (not older than the consent the last build knew)."""
    if not (
        has_table(connection, "marts", "customer_id_map")
        and has_table(connection, "marts", "customer_consents")
    ):
        return {}  # no build yet: nothing can have been delivered
    codes = connection.execute(
        "select distinct channel, status from raw.consents where _loaded_at = $at", {"at": loaded_at}
    ).fetchall()
    channels, statuses = canonical_values("consent_channel"), canonical_values("consent_status")
    mapping = pd.DataFrame(
        [
            (
                channel,
                status,
                channels.get(vocabulary_key(channel) or ""),
                statuses.get(vocabulary_key(status) or ""),
            )
            for channel, status in codes
        ],
        columns=["channel_code", "status_code", "channel", "status"],
        dtype=object,
    )
    if mapping.empty:
        return {}
    connection.register("_consent_codes", mapping)
    try:
        rows = connection.execute(
            """
            with delivered as (
                select ids.customer_id, codes.channel, codes.status, consents.recorded_at
                from raw.consents as consents
                join _consent_codes as codes
                    on consents.channel is not distinct from codes.channel_code
                    and consents.status is not distinct from codes.status_code
                join marts.customer_id_map as ids
                    on ids.source_system = consents._source_system
                    and ids.source_customer_id = trim(consents.source_customer_id)
                where consents._loaded_at = $at and codes.channel is not null
            ),
            latest as (
                select * from delivered
                qualify row_number() over (
                    partition by customer_id, channel order by recorded_at desc, (status = 'opt_out') desc
                ) = 1
            )
            select latest.channel, latest.customer_id
            from latest
            left join marts.customer_consents as known
                on known.customer_id = latest.customer_id and known.channel = latest.channel
            where latest.status = 'opt_out' and (known.recorded_at is null or latest.recorded_at >= known.recorded_at)
            """,
            {"at": loaded_at},
        ).fetchall()
    finally:
        connection.unregister("_consent_codes")
    opted_out: dict[str, set[int]] = {}
    for channel, customer_id in rows:
        opted_out.setdefault(channel, set()).add(customer_id)
    return opted_out


def honour(
    connection: duckdb.DuckDBPyConnection,
    loaded_at: datetime,
    export_dir: Path,
    serving: Path,
    segment_channels: Mapping[str, str],
    also: Mapping[str, set[int]] | None = None,
) -> Honoured:
    """Remove the customers of new_opt_outs, and those of `also` (channel -> customers: the opt-outs of a
    file its raw gate rejected, read before its rows left raw), from every export folder (rewritten and
    swapped in whole, its manifest updated) and from the serving file's segment tables of the same channel
    (a new copy renamed over it: readers keep their snapshot)."""
    opted_out = new_opt_outs(connection, loaded_at)
    for channel, customers in (also or {}).items():
        opted_out[channel] = opted_out.get(channel, set()) | customers
    removed: dict[str, int] = {}
    if opted_out:
        for manifest in sorted(export_dir.glob("*/manifest.json")) if export_dir.is_dir() else []:
            removed |= remove_customers(
                manifest.parent,
                lambda entry: opted_out.get(entry["channel"], set()),
                "opted_out_removed",
                "opt_outs_applied_at",
                loaded_at,
            )
        if serving.exists():
            removed |= _refilter_serving(connection, serving, opted_out, segment_channels)
    return Honoured(sum(len(ids) for ids in opted_out.values()), removed)


def _refilter_serving(
    connection: duckdb.DuckDBPyConnection,
    serving: Path,
    opted_out: dict[str, set[int]],
    segment_channels: Mapping[str, str],
) -> dict[str, int]:
    """Delete the opted-out customers from the serving file's segment tables of their channels: looked for in
    the file as it is (read-only, beside its readers), and only if some are there, in a copy renamed over it."""

    def matches(catalog: str) -> dict[str, tuple[str, list[int]]]:
        tables = connection.execute(
            "select table_name from duckdb_tables() where database_name = $catalog and schema_name = $schema",
            {"catalog": catalog, "schema": SEGMENT_SCHEMA},
        ).fetchall()
        found = {}
        for (name,) in tables:
            customers = sorted(opted_out.get(segment_channels.get(name, ""), ()))
            relation = f'{catalog}.{SEGMENT_SCHEMA}."{name}"'
            if customers and scalar(
                connection,
                f"select count(*) from {relation} where list_contains($ids, customer_id)",
                {"ids": customers},
            ):
                found[name] = (relation, customers)
        return found

    with attached(connection, serving, "delivered", read_only=True):
        if not matches("delivered"):
            return {}
    partial = serving.with_name(f"{partial_name(serving)}{uuid.uuid4().hex}")
    shutil.copyfile(serving, partial)
    removed: dict[str, int] = {}
    try:
        with attached(connection, partial, "refiltered"):
            for name, (relation, customers) in matches("refiltered").items():
                removed[f"serving segments.{name}"] = scalar(
                    connection,
                    f"delete from {relation} where list_contains($ids, customer_id)",
                    {"ids": customers},
                )
        partial.replace(serving)
    finally:
        partial.unlink(missing_ok=True)
        partial.with_name(partial.name + ".wal").unlink(missing_ok=True)
    return removed
