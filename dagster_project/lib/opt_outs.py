"""Opt-outs honoured at once (docs/delivery.md): an opt-out that loads is applied to what is already out there —
every export folder and the serving file's segment tables — in the same run, before anything else can fail.

A run stops at the first failed step or gate; the delivery that would refresh the exports comes last. Without
this, one bad file delivered beside a valid opt-out would keep the opted-out customer in the marketers' files
until someone fixed the other file. The consent codes are read with the vocabulary the staging model uses
(lib/gates.vocabulary_key, held equal to dbt's macro by a test) and the customer by the last build's
marts.customer_id_map: a record no build has seen yet cannot be in a delivered file.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import shutil
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import pandas as pd

from dagster_project.lib.exports import DELIMITER, SEGMENT_SCHEMA, swap_in, write_manifest
from dagster_project.lib.gates import VOCABULARY_SEED, vocabulary_key
from dagster_project.lib.publish import partial_name


@dataclass(frozen=True)
class Honoured:
    opt_outs: int  # (customer, channel) pairs newly opted out
    removed: dict[str, int]  # where -> rows removed ("exports/<as_of>/<file>", "serving segments.<name>")

    def summary(self) -> str:
        where = ", ".join(f"{place}: {rows}" for place, rows in self.removed.items()) or "nothing to remove"
        return f"{self.opt_outs} new opt-out(s) applied to what was already delivered ({where})"


def _canonical(domain: str) -> dict[str, str]:
    with VOCABULARY_SEED.open(encoding="utf-8") as rows:
        return {
            vocabulary_key(row["source_value"]): row["canonical_value"]
            for row in csv.DictReader(rows)
            if row["domain"] == domain
        }


def _has_table(connection: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    return bool(
        connection.execute(
            "select count(*) from duckdb_tables() where schema_name = $schema and table_name = $table",
            {"schema": schema, "table": table},
        ).fetchone()[0]
    )


def new_opt_outs(connection: duckdb.DuckDBPyConnection, loaded_at: datetime) -> dict[str, set[int]]:
    """Channel -> customers whose consent rows loaded at `loaded_at` make their latest statement an opt-out
    (not older than the consent the last build knew)."""
    if not _has_table(connection, "marts", "customer_id_map"):
        return {}
    codes = connection.execute(
        "select distinct channel, status from raw.consents where _loaded_at = $at", {"at": loaded_at}
    ).fetchall()
    channels, statuses = _canonical("consent_channel"), _canonical("consent_status")
    mapping = pd.DataFrame(
        [
            (channel, status, channels.get(vocabulary_key(channel)), statuses.get(vocabulary_key(status)))
            for channel, status in codes
        ],
        columns=["channel_code", "status_code", "channel", "status"],
        dtype=object,
    )
    if mapping.empty:
        return {}
    known = "known.recorded_at" if _has_table(connection, "marts", "customer_consents") else "null"
    known_join = (
        "left join marts.customer_consents as known on known.customer_id = latest.customer_id "
        "and known.channel = latest.channel"
        if known != "null"
        else ""
    )
    connection.register("_consent_codes", mapping)
    try:
        rows = connection.execute(
            f"""
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
            from latest {known_join}
            where latest.status = 'opt_out' and ({known} is null or latest.recorded_at >= {known})
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
    at: datetime,
) -> Honoured:
    """Remove the customers of new_opt_outs from every export folder (rewritten and swapped in whole, its
    manifest updated) and from the serving file's segment tables of the same channel (a new copy renamed
    over it: readers keep their snapshot)."""
    opted_out = new_opt_outs(connection, loaded_at)
    removed: dict[str, int] = {}
    if opted_out:
        for manifest in sorted(export_dir.glob("*/manifest.json")) if export_dir.is_dir() else []:
            removed |= _refilter_folder(manifest.parent, opted_out, at)
        if serving.exists():
            removed |= _refilter_serving(connection, serving, opted_out, segment_channels)
    return Honoured(sum(len(ids) for ids in opted_out.values()), removed)


def _refilter_folder(folder: Path, opted_out: dict[str, set[int]], at: datetime) -> dict[str, int]:
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    changed: dict[str, bytes] = {}
    removed: dict[str, int] = {}
    for entry in manifest["segments"]:
        customers = opted_out.get(entry["channel"])
        if not customers:
            continue
        content = (folder / entry["file"]).read_bytes()
        frame = pd.read_csv(
            io.BytesIO(content), sep=DELIMITER, dtype=str, keep_default_na=False, encoding="utf-8-sig"
        )
        gone = frame["customer_id"].astype("int64").isin(customers)
        if not gone.any():
            continue
        text = frame.loc[~gone].to_csv(index=False, sep=DELIMITER, lineterminator="\r\n")
        changed[entry["file"]] = "\ufeff".encode() + text.encode("utf-8")
        entry["rows"] -= int(gone.sum())
        entry["opted_out_removed"] += int(gone.sum())
        entry["sha256"] = hashlib.sha256(changed[entry["file"]]).hexdigest()
        removed[f"exports/{folder.name}/{entry['file']}"] = int(gone.sum())
    if changed:
        manifest["opt_outs_applied_at"] = at.isoformat(timespec="seconds")
        staging = folder.with_name(f".{folder.name}.partial-{uuid.uuid4().hex}")
        shutil.copytree(folder, staging)
        try:
            for name, content in changed.items():
                (staging / name).write_bytes(content)
            write_manifest(staging, manifest)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        swap_in(staging, folder)
    return removed


def _refilter_serving(
    connection: duckdb.DuckDBPyConnection,
    serving: Path,
    opted_out: dict[str, set[int]],
    segment_channels: Mapping[str, str],
) -> dict[str, int]:
    partial = serving.with_name(f"{partial_name(serving)}{uuid.uuid4().hex}")
    shutil.copyfile(serving, partial)
    removed: dict[str, int] = {}
    quoted = str(partial).replace("'", "''")  # ATTACH takes no parameters; the path is ours
    connection.execute(f"attach '{quoted}' as refiltered")
    try:
        tables = connection.execute(
            "select table_name from duckdb_tables() where database_name = 'refiltered' and schema_name = $schema",
            {"schema": SEGMENT_SCHEMA},
        ).fetchall()
        for (name,) in tables:
            customers = opted_out.get(segment_channels.get(name, ""))
            if not customers:
                continue
            gone = connection.execute(
                f'delete from refiltered.{SEGMENT_SCHEMA}."{name}" where list_contains($ids, customer_id)',
                {"ids": sorted(customers)},
            ).fetchone()[0]
            if gone:
                removed[f"serving segments.{name}"] = gone
        connection.execute("detach refiltered")
        if removed:
            partial.replace(serving)
    finally:
        if "refiltered" in {
            row[0] for row in connection.execute("select database_name from duckdb_databases()").fetchall()
        }:
            connection.execute("detach refiltered")
        partial.unlink(missing_ok=True)
        partial.with_name(partial.name + ".wal").unlink(missing_ok=True)
    return removed
