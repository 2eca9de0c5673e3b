"""Segment exports for marketers (docs/delivery.md): one CSV per segment in <export_dir>/<as_of>/ and a
manifest.

A segment is a dbt model tagged `segment` with meta.segment {channel, purpose, owner, allowed_columns}. Who may
leave the warehouse is decided here, in `prepare`, once for the files and the serving file's segment tables:
  * only the allowed columns, customer_id first;
  * never a customer whose latest consent for the segment's channel is opt_out (counted);
  * for a `promotion` segment, never a customer with an open complaint (service recovery first; counted;
    C360_PROMOTIONS_SKIP_OPEN_COMPLAINTS=false turns the rule off); `service` segments keep them;
  * where the segment says whether the contact pays (a `contact_pays` column: what the contact is expected to
    bring exceeds its cost), never a customer whose contact does not (counted as unprofitable_removed);
  * text a spreadsheet cannot hold is cleaned: control characters and bidirectional overrides removed, cells
    cut at 32,767 characters (counted per kind);
  * Brazilian phones in `phone` are written in the national form, (31) 98765-4321, which a spreadsheet keeps as
    typed text; `phone_e164` (where a segment lists it) keeps +5531987654321 for dialers and SMS tools;
  * money (DECIMAL columns) with two decimals.
The CSV files then:
  * neutralise cells a spreadsheet would run as a formula (= + - @ tab CR first): prefixed with '
    (a bare international phone number, + and digits only, is not a formula and stays as it is);
  * are UTF-8 with a BOM, ';' between cells and ',' as decimal mark, as Excel in a pt-BR locale reads them;
  * appear all at once: every file and the manifest are written to a hidden folder that replaces <as_of>/ by
    rename (see lib/delivery.py: together with the serving file), so a reader never sees half a file.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import re
import shutil
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import yaml

from dagster_project.lib import dbt_builds
from dagster_project.lib.lazy import lazy_module

if TYPE_CHECKING:
    import pandas as pd
else:
    pd = lazy_module("pandas")

DELIMITER = ";"
DECIMAL = ","
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
PLAIN_INTERNATIONAL_NUMBER = r"\+\d{6,15}"  # E.164: a number, never a formula
SEGMENT_SCHEMA = "segments"
PURPOSES = ("promotion", "service")
SPREADSHEET_CELL_LIMIT = 32_767  # characters a cell of Excel or LibreOffice Calc holds
# C0 and C1 control characters (tab, line feed and carriage return excepted: CSV quoting carries them) and the
# bidirectional embeddings, overrides and isolates that make a cell display other text than it holds.
UNPRINTABLE = "[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]"
# +55, two-digit area code, 9-digit mobile or 8-digit landline -> (31) 98765-4321 / (31) 3456-7890.
BRAZILIAN_PHONE = (r"^\+55(\d{2})(\d{4,5})(\d{4})$", r"(\1) \2-\3")
MONEY_DECIMALS = 2


class SegmentDefinitionError(ValueError):
    """A segment model whose meta cannot be exported as written."""


@dataclass(frozen=True)
class Segment:
    name: str
    description: str
    channel: str
    owner: str
    allowed_columns: tuple[str, ...]
    purpose: str = "promotion"

    @property
    def relation(self) -> str:
        return f"{SEGMENT_SCHEMA}.{self.name}"


@dataclass(frozen=True)
class PreparedSegment:
    """A segment's rows as they leave the warehouse (`rows`: in the files before formula neutralisation, and in
    the serving file), the customers removed (opt-out of the channel; open complaint in a promotion; a contact
    that does not pay), the cells cleaned by kind, and the money columns. `checked` adds the columns the segment
    gate validates."""

    segment: Segment
    rows: pd.DataFrame
    opted_out_removed: int
    checked: pd.DataFrame
    open_complaint_removed: int = 0
    unprofitable_removed: int = 0
    cells_cleaned: dict[str, int] = field(default_factory=dict)
    money_columns: tuple[str, ...] = ()


def consent_channels(dbt_project_file: Path) -> list[str]:
    """The consent channels dbt knows (var `consent_channels` of dbt_project.yml): a segment's channel is one."""
    return list(yaml.safe_load(dbt_project_file.read_text(encoding="utf-8"))["vars"]["consent_channels"])


def segments_from_manifest(manifest_path: Path, consent_channels: list[str]) -> list[Segment]:
    """Every model tagged `segment` in dbt's manifest, with its meta checked."""
    manifest = dbt_builds.read_manifest(manifest_path)
    segments = []
    for node in manifest["nodes"].values():
        if node["resource_type"] != "model" or "segment" not in node.get("tags", []):
            continue
        meta = node.get("config", {}).get("meta", {}).get("segment") or node.get("meta", {}).get("segment")
        name = node["name"]
        if not meta:
            raise SegmentDefinitionError(
                f"segment {name}: meta.segment (channel, purpose, owner, allowed_columns) missing"
            )
        if meta.get("purpose") not in PURPOSES:
            raise SegmentDefinitionError(
                f"segment {name}: purpose {meta.get('purpose')!r} must be one of {', '.join(PURPOSES)}"
            )
        columns = tuple(meta.get("allowed_columns") or ())
        if not columns or columns[0] != "customer_id":
            raise SegmentDefinitionError(f"segment {name}: allowed_columns must start with customer_id")
        if meta.get("channel") not in consent_channels:
            raise SegmentDefinitionError(
                f"segment {name}: channel {meta.get('channel')!r} is not a consent channel ({', '.join(consent_channels)})"
            )
        segments.append(
            Segment(
                name,
                node.get("description", ""),
                meta["channel"],
                meta.get("owner", ""),
                columns,
                meta["purpose"],
            )
        )
    return sorted(segments, key=lambda segment: segment.name)


def is_formula_like(value: object) -> bool:
    return (
        isinstance(value, str)
        and value.startswith(FORMULA_STARTS)
        and not re.fullmatch(PLAIN_INTERNATIONAL_NUMBER, value)
    )


def formula_like_cells(column: pd.Series) -> pd.Series:
    """Which cells of `column` are formula-like text: string columns vectorised (a million cells per second
    checked one by one in Python is seconds per segment: issue 8), mixed object columns cell by cell, other
    types (numbers, dates) never."""
    if isinstance(column.dtype, pd.StringDtype):
        starts = column.str.startswith(FORMULA_STARTS).fillna(False).astype(bool)
        number = column.str.fullmatch(PLAIN_INTERNATIONAL_NUMBER).fillna(False).astype(bool)
        return starts & ~number
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


def _is_text_or_missing(value: object) -> bool:
    return value is None or isinstance(value, str) or (isinstance(value, float) and value != value)


def text_columns(frame: pd.DataFrame) -> list[str]:
    """Columns of text: string columns, and object columns whose values are all text or missing (not lists)."""
    return [
        name
        for name, column in frame.items()
        if isinstance(column.dtype, pd.StringDtype)
        or (column.dtype == object and column.map(_is_text_or_missing).all())
    ]


def clean_text(frame: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """Remove UNPRINTABLE characters from text cells and cut them at SPREADSHEET_CELL_LIMIT; returns the
    cleaned frame and how many cells each rule changed."""
    cleaned, counts = {}, {"control_characters_removed": 0, "cut_at_cell_limit": 0}
    for name in text_columns(frame):
        column = frame[name].astype("str")
        unprintable = column.str.contains(UNPRINTABLE, regex=True).fillna(False).astype(bool)
        if unprintable.any():  # most columns have none: searched, not rewritten
            column = column.where(~unprintable, column.str.replace(UNPRINTABLE, "", regex=True))
            counts["control_characters_removed"] += int(unprintable.sum())
        too_long = column.str.len().gt(SPREADSHEET_CELL_LIMIT).fillna(False).astype(bool)
        counts["cut_at_cell_limit"] += int(too_long.sum())
        cleaned[name] = column.where(~too_long, column.str.slice(0, SPREADSHEET_CELL_LIMIT))
    return (frame.assign(**cleaned) if cleaned else frame), counts


def national_phones(frame: pd.DataFrame) -> pd.DataFrame:
    """`phone` in the Brazilian national form (other countries' numbers stay in E.164)."""
    if "phone" not in frame:
        return frame
    pattern, form = BRAZILIAN_PHONE
    return frame.assign(phone=frame["phone"].astype("str").str.replace(pattern, form, regex=True))


def prepare(
    connection: duckdb.DuckDBPyConnection, segment: Segment, skip_open_complaints: bool = True
) -> PreparedSegment:
    """Read the segment with each customer's latest consent for its channel and open complaints; drop the
    opted-out and, from a promotion, the customers with an open complaint; clean and format the cells."""
    wanted = [column for column in segment.allowed_columns if column != "phone_e164"]
    if "phone_e164" in segment.allowed_columns:
        wanted_sql = ", ".join(f'segment."{column}"' for column in wanted) + ", segment.phone as phone_e164"
    else:
        wanted_sql = ", ".join(f'segment."{column}"' for column in wanted)
    types = dict(
        connection.execute(f"select column_name, column_type from (describe {segment.relation})").fetchall()
    )
    contact_pays = "coalesce(segment.contact_pays, false)" if "contact_pays" in types else "true"
    complaint_rule = segment.purpose == "promotion" and skip_open_complaints
    open_complaints, profile = ("0", "")
    if complaint_rule:
        open_complaints = "coalesce(profile.open_complaints, 0)"
        profile = "left join marts.customer_360 as profile on segment.customer_id = profile.customer_id"
    frame = connection.execute(
        f"""
        select {wanted_sql}, consents.status as consent_status, {open_complaints} as open_complaints,
            {contact_pays} as contact_pays
        from {segment.relation} as segment
        left join marts.customer_consents as consents
            on segment.customer_id = consents.customer_id and consents.channel = $channel
        {profile}
        order by segment.customer_id
        """,
        {"channel": segment.channel},
    ).df()
    money = tuple(column for column in wanted if str(types.get(column, "")).startswith("DECIMAL"))
    opted_out = frame["consent_status"].eq("opt_out").fillna(False).astype(bool)
    open_complaint = frame["open_complaints"].gt(0) & ~opted_out
    unprofitable = ~frame["contact_pays"].astype(bool) & ~opted_out & ~open_complaint
    kept = frame.loc[~opted_out & ~open_complaint & ~unprofitable].reset_index(drop=True)
    rows, cells_cleaned = clean_text(national_phones(kept[list(segment.allowed_columns)]))
    rows = rows.assign(**{column: rows[column].astype(float).round(MONEY_DECIMALS) for column in money})
    exported = neutralise(rows)
    checked = exported.assign(
        consent_status=kept["consent_status"],
        promotion_to_open_complaint=kept["open_complaints"] > 0,
        has_formula_like_cell=pd.concat(
            [formula_like_cells(column) for _, column in exported.items()], axis=1
        ).any(axis=1),
    )
    return PreparedSegment(
        segment,
        rows,
        int(opted_out.sum()),
        checked,
        open_complaint_removed=int(open_complaint.sum()),
        unprofitable_removed=int(unprofitable.sum()),
        cells_cleaned=cells_cleaned,
        money_columns=money,
    )


def prepared_folder(warehouse: Path) -> Path:
    """Where a run's segment gates leave the segments they prepared, for the same run's delivery:
    data/warehouse.duckdb -> data/warehouse_prepared/<run_id>/<segment>.pickle."""
    return warehouse.with_name(warehouse.stem + "_prepared")


def keep_prepared(warehouse: Path, run_id: str, prepared: PreparedSegment) -> None:
    """Keep what a segment gate validated, so that the delivery of the same run exports exactly it, without
    reading and cleaning the segment a second time (written whole, then renamed into place). What an earlier
    run left (one that failed between its gates and its delivery) is removed first: customer rows are kept
    for one run at most."""
    folder = prepared_folder(warehouse) / run_id
    for left_behind in prepared_folder(warehouse).glob("*"):
        if left_behind != folder:
            shutil.rmtree(left_behind, ignore_errors=True)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{prepared.segment.name}.pickle"
    partial = path.with_name(path.name + ".writing")
    partial.write_bytes(pickle.dumps(prepared, protocol=pickle.HIGHEST_PROTOCOL))
    os.replace(partial, path)


def prepared_by_gate(warehouse: Path, run_id: str, segment: Segment) -> PreparedSegment | None:
    """The segment as this run's gate prepared it (nothing else writes the warehouse between a run's gates and
    its delivery), or None if its gate did not run in this run."""
    path = prepared_folder(warehouse) / run_id / f"{segment.name}.pickle"
    if not path.exists():
        return None
    prepared = pickle.loads(path.read_bytes())  # written by this process's gate step, never by a user
    return prepared if prepared.segment == segment else None


def forget_prepared(warehouse: Path) -> None:
    """Remove every run's prepared segments (customer rows): once a delivery ended, well or not, none is needed
    again (a retried delivery prepares anew)."""
    shutil.rmtree(prepared_folder(warehouse), ignore_errors=True)


def _csv_bytes(frame: pd.DataFrame, money_columns: tuple[str, ...] = ()) -> bytes:
    """The CSV a spreadsheet opens as intended: formulas neutralised, money with two decimals."""
    money = {
        column: frame[column].map(
            lambda value: "" if pd.isna(value) else f"{value:.{MONEY_DECIMALS}f}".replace(".", DECIMAL)
        )
        for column in money_columns
    }
    text = (
        neutralise(frame)
        .assign(**money)
        .to_csv(index=False, sep=DELIMITER, decimal=DECIMAL, lineterminator="\r\n")
    )
    return "\ufeff".encode() + text.encode("utf-8")


def write_exports(
    export_dir: Path,
    as_of: date,
    prepared: Sequence[PreparedSegment],
    gates: dict[str, Any],
    created_at: datetime,
) -> dict[str, Any]:
    """Write every segment and the manifest into <export_dir>/<as_of>/, replacing it at once."""
    staging, target, manifest = stage_exports(export_dir, as_of, prepared, gates, created_at)
    swap_in(staging, target)
    return manifest


def stage_exports(
    export_dir: Path,
    as_of: date,
    prepared: Sequence[PreparedSegment],
    gates: dict[str, Any],
    created_at: datetime,
) -> tuple[Path, Path, dict[str, Any]]:
    """Write every segment and the manifest into a hidden folder beside <export_dir>/<as_of>/; returns that
    folder, the folder it is to replace, and the manifest. A failure removes the hidden folder."""
    target = export_dir / as_of.isoformat()
    staging = export_dir / f".{as_of.isoformat()}.partial-{uuid.uuid4().hex}"
    staging.mkdir(parents=True)
    try:
        entries = []
        for item in prepared:
            content = _csv_bytes(item.rows, item.money_columns)
            file_name = f"{item.segment.name}.csv"
            (staging / file_name).write_bytes(content)
            entries.append(
                {
                    "name": item.segment.name,
                    "file": file_name,
                    "channel": item.segment.channel,
                    "purpose": item.segment.purpose,
                    "owner": item.segment.owner,
                    "rows": len(item.rows),
                    "opted_out_removed": item.opted_out_removed,
                    "open_complaint_removed": item.open_complaint_removed,
                    "unprofitable_removed": item.unprofitable_removed,
                    "cells_cleaned": item.cells_cleaned,
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
        write_manifest(staging, manifest)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return staging, target, manifest


def write_manifest(folder: Path, manifest: dict[str, Any]) -> None:
    (folder / "manifest.json").write_text(
        json.dumps(manifest, indent=2, ensure_ascii=False), encoding="utf-8"
    )


def swap_in(staging: Path, target: Path) -> None:
    """Replace folder `target` by `staging` with renames; the old folder is removed only once the new one is
    in. Made again after an interruption, it finishes what is left (nothing, if `staging` is already in)."""
    if not staging.exists():
        return
    retired = target.with_name(f".{target.name}.retired-{staging.name.rsplit('-', 1)[-1]}")
    if target.exists():
        target.rename(retired)
    staging.rename(target)
    shutil.rmtree(retired, ignore_errors=True)


def remove_customers(
    folder: Path,
    customers_of: Callable[[dict[str, Any]], set[int]],
    counted_as: str,
    stamped_as: str,
    at: datetime,
) -> dict[str, int]:
    """Remove from the export folder's segment files the customers `customers_of(manifest entry)` names (opt-outs
    of the entry's channel, erased people): each file changed is rewritten as it was less those rows, its
    manifest entry's rows, sha256 and `counted_as` count updated and the manifest stamped `stamped_as`; the
    folder is rewritten whole and swapped in. Returns rows removed per "exports/<folder>/<file>"."""
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    changed: dict[str, bytes] = {}
    removed: dict[str, int] = {}
    for entry in manifest["segments"]:
        customers = customers_of(entry)
        if not customers:
            continue
        content = (folder / entry["file"]).read_bytes()
        read = {"sep": DELIMITER, "dtype": str, "keep_default_na": False, "encoding": "utf-8-sig"}
        ids = pd.read_csv(io.BytesIO(content), usecols=["customer_id"], **read)["customer_id"]
        gone = ids.astype("int64").isin(customers)
        if not gone.any():
            continue  # the common case: read the ids only, rewrite nothing
        frame = pd.read_csv(io.BytesIO(content), **read)
        text = frame.loc[~gone.to_numpy()].to_csv(index=False, sep=DELIMITER, lineterminator="\r\n")
        changed[entry["file"]] = "\ufeff".encode() + text.encode("utf-8")
        entry["rows"] -= int(gone.sum())
        entry[counted_as] = entry.get(counted_as, 0) + int(gone.sum())
        entry["sha256"] = hashlib.sha256(changed[entry["file"]]).hexdigest()
        removed[f"exports/{folder.name}/{entry['file']}"] = int(gone.sum())
    if changed:
        manifest[stamped_as] = at.isoformat(timespec="seconds")
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
