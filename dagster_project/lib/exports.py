"""Segment exports for marketers (DESIGN §8): one CSV per segment in <export_dir>/<as_of>/ and a manifest.

A segment is a dbt model tagged `segment` with meta.segment {channel, owner, allowed_columns}. Its export:
  * holds only the allowed columns, customer_id first;
  * never holds a customer whose latest consent for the segment's channel is opt_out (they are counted);
  * neutralises cells a spreadsheet would run as a formula (= + - @ tab CR first): prefixed with '
  * is UTF-8 with a BOM, ';' between cells and ',' as decimal mark, as Excel in a pt-BR locale reads it;
  * appears all at once: every file and the manifest are written to a hidden folder that then replaces
    <as_of>/ by rename, so a reader never sees half a file and a failed run leaves the previous export.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import yaml

DELIMITER = ";"
DECIMAL = ","
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
SEGMENT_SCHEMA = "segments"


class SegmentDefinitionError(ValueError):
    """A segment model whose meta cannot be exported as written."""


@dataclass(frozen=True)
class Segment:
    name: str
    description: str
    channel: str
    owner: str
    allowed_columns: tuple[str, ...]

    @property
    def relation(self) -> str:
        return f"{SEGMENT_SCHEMA}.{self.name}"


@dataclass(frozen=True)
class PreparedSegment:
    """A segment's rows as they will be exported, before formula neutralisation (`rows`) and the count of
    customers removed for their opt-out. `checked` adds the columns the segment gate validates."""

    segment: Segment
    rows: pd.DataFrame
    opted_out_removed: int
    checked: pd.DataFrame


def consent_channels(dbt_project_file: Path) -> list[str]:
    """The consent channels dbt knows (var `consent_channels` of dbt_project.yml): a segment's channel is one."""
    return list(yaml.safe_load(dbt_project_file.read_text(encoding="utf-8"))["vars"]["consent_channels"])


def segments_from_manifest(manifest_path: Path, consent_channels: list[str]) -> list[Segment]:
    """Every model tagged `segment` in dbt's manifest, with its meta checked."""
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    segments = []
    for node in manifest["nodes"].values():
        if node["resource_type"] != "model" or "segment" not in node.get("tags", []):
            continue
        meta = node.get("config", {}).get("meta", {}).get("segment") or node.get("meta", {}).get("segment")
        name = node["name"]
        if not meta:
            raise SegmentDefinitionError(
                f"segment {name}: meta.segment (channel, owner, allowed_columns) missing"
            )
        columns = tuple(meta.get("allowed_columns") or ())
        if not columns or columns[0] != "customer_id":
            raise SegmentDefinitionError(f"segment {name}: allowed_columns must start with customer_id")
        if meta.get("channel") not in consent_channels:
            raise SegmentDefinitionError(
                f"segment {name}: channel {meta.get('channel')!r} is not a consent channel ({', '.join(consent_channels)})"
            )
        segments.append(
            Segment(name, node.get("description", ""), meta["channel"], meta.get("owner", ""), columns)
        )
    return sorted(segments, key=lambda segment: segment.name)


def is_formula_like(value: object) -> bool:
    return isinstance(value, str) and value.startswith(FORMULA_STARTS)


def formula_like_cells(column: pd.Series) -> pd.Series:
    """Which cells of `column` are formula-like text: string columns vectorised (a million cells per second
    checked one by one in Python is seconds per segment: issue 8), mixed object columns cell by cell, other
    types (numbers, dates) never."""
    if isinstance(column.dtype, pd.StringDtype):
        return column.str.startswith(FORMULA_STARTS).fillna(False).astype(bool)
    if column.dtype == object:
        return column.map(is_formula_like).astype(bool)
    return pd.Series(False, index=column.index)


def neutralise(frame: pd.DataFrame) -> pd.DataFrame:
    """Prefix formula-like text cells with an apostrophe, which spreadsheets show as text (OWASP CSV injection)."""
    neutralised = {}
    for name, column in frame.items():
        formula_like = formula_like_cells(column)
        if formula_like.any():
            neutralised[name] = column.astype(object).where(
                ~formula_like, "'" + column[formula_like].astype(str)
            )
    return frame.assign(**neutralised) if neutralised else frame


def prepare(connection: duckdb.DuckDBPyConnection, segment: Segment) -> PreparedSegment:
    """Read the segment with each customer's latest consent for its channel; drop the opted-out."""
    columns = ", ".join(f'segment."{column}"' for column in segment.allowed_columns)
    frame = connection.execute(
        f"""
        select {columns}, consents.status as consent_status
        from {segment.relation} as segment
        left join marts.customer_consents as consents
            on segment.customer_id = consents.customer_id and consents.channel = $channel
        order by segment.customer_id
        """,
        {"channel": segment.channel},
    ).df()
    opted_out = frame["consent_status"].eq("opt_out").fillna(False)
    kept = frame.loc[~opted_out].reset_index(drop=True)
    rows = kept[list(segment.allowed_columns)]
    exported = neutralise(rows)
    checked = exported.assign(
        consent_status=kept["consent_status"],
        has_formula_like_cell=pd.concat(
            [formula_like_cells(column) for _, column in exported.items()], axis=1
        ).any(axis=1),
    )
    return PreparedSegment(segment, rows, int(opted_out.sum()), checked)


def _csv_bytes(frame: pd.DataFrame) -> bytes:
    text = neutralise(frame).to_csv(index=False, sep=DELIMITER, decimal=DECIMAL, lineterminator="\r\n")
    return "\ufeff".encode() + text.encode("utf-8")


def write_exports(
    export_dir: Path,
    as_of: date,
    prepared: list[PreparedSegment],
    gates: dict[str, Any],
    created_at: datetime,
) -> dict[str, Any]:
    """Write every segment and the manifest into <export_dir>/<as_of>/, replacing it at once."""
    target = export_dir / as_of.isoformat()
    staging = export_dir / f".{as_of.isoformat()}.partial-{uuid.uuid4().hex}"
    staging.mkdir(parents=True)
    try:
        entries = []
        for item in prepared:
            content = _csv_bytes(item.rows)
            file_name = f"{item.segment.name}.csv"
            (staging / file_name).write_bytes(content)
            entries.append(
                {
                    "name": item.segment.name,
                    "file": file_name,
                    "channel": item.segment.channel,
                    "owner": item.segment.owner,
                    "rows": len(item.rows),
                    "opted_out_removed": item.opted_out_removed,
                    "columns": list(item.segment.allowed_columns),
                    "sha256": hashlib.sha256(content).hexdigest(),
                    "delimiter": DELIMITER,
                    "decimal": DECIMAL,
                    "encoding": "utf-8-sig",
                }
            )
        manifest = {
            "as_of": as_of.isoformat(),
            "created_at": created_at.isoformat(timespec="seconds"),
            "gates": gates,
            "segments": entries,
        }
        (staging / "manifest.json").write_text(
            json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8"
        )
        _swap_in(staging, target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return manifest


def _swap_in(staging: Path, target: Path) -> None:
    """Replace `target` by `staging` with renames; the old folder is removed only once the new one is in."""
    retired = target.with_name(f".{target.name}.retired-{uuid.uuid4().hex}")
    if target.exists():
        target.rename(retired)
    staging.rename(target)
    shutil.rmtree(retired, ignore_errors=True)
