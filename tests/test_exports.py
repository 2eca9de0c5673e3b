"""Segment exports on a real DuckDB: consent applied per channel, formulas neutralised, Excel-ready bytes, a
manifest that matches the files, and a folder replaced all at once or not at all."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
from dataclasses import replace
from datetime import date, datetime
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from dagster_project.defs.resources import DBT_PROJECT_DIR
from dagster_project.lib.exports import (
    PreparedSegment,
    Segment,
    SegmentDefinitionError,
    clean_text,
    forget_prepared,
    formula_like_cells,
    is_formula_like,
    keep_prepared,
    neutralise,
    prepare,
    prepared_by_gate,
    prepared_folder,
    segments_from_manifest,
    write_exports,
)

HYPERLINK = '=HYPERLINK("http://evil.example","Clique aqui")'
SMS = Segment(
    "lapsed_sms",
    "test",
    "sms",
    "crm",
    ("customer_id", "full_name", "phone", "phone_e164", "spend"),
    "promotion",
)


@pytest.fixture
def warehouse(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect(str(tmp_path / "w.duckdb"))
    connection.execute("create schema segments; create schema marts")
    connection.execute(
        """
        create table segments.lapsed_sms as select customer_id, full_name, phone, spend::decimal(18, 4) as spend
        from (values
            (1, 'Ana Lúcia', '+5511999990001', 10.5),
            (2, $formula, '+551133334444', -3.25),
            (3, 'Opted Out', '+5511999990003', 7.0),
            (4, '@Bruno', '+442071234567', 0.0002),
            (5, 'Complaining', '+5511999990005', 5.0)
        ) as rows(customer_id, full_name, phone, spend)
        """,
        {"formula": HYPERLINK},
    )
    connection.execute(
        "create table marts.customer_360 as select * from (values (1, 0), (2, 0), (3, 1), (4, 0), (5, 2)) "
        "as rows(customer_id, open_complaints)"
    )
    connection.execute(
        """
        create table marts.customer_consents as select * from (values
            (1, 'sms', 'opt_in'), (3, 'sms', 'opt_out'), (4, 'email', 'opt_out'), (2, 'email', 'opt_in')
        ) as rows(customer_id, channel, status)
        """
    )
    return connection


def read_export(path: Path) -> list[list[str]]:
    content = path.read_bytes()
    assert content.startswith("\ufeff".encode())  # UTF-8 BOM for Excel
    return list(csv.reader(io.StringIO(content.decode("utf-8-sig")), delimiter=";"))


def test_customers_whose_contact_does_not_pay_are_left_out_and_counted(warehouse):
    """A segment that says whether each contact pays (contact_pays) exports only those that do; a customer
    already removed for an opt-out or a complaint is counted there, not twice; unknown (null) does not pay."""
    warehouse.execute(
        """
        create table segments.lapsed_sms_priced as
        select lapsed_sms.*, pays as contact_pays
        from segments.lapsed_sms
        inner join (values (1, true), (2, false), (3, false), (4, null), (5, false)) as p(customer_id, pays)
            using (customer_id)
        """
    )
    priced = Segment("lapsed_sms_priced", "", "sms", "crm", SMS.allowed_columns)
    prepared = prepare(warehouse, priced)
    assert prepared.rows["customer_id"].tolist() == [1]
    assert (prepared.opted_out_removed, prepared.open_complaint_removed, prepared.unprofitable_removed) == (
        1,
        1,
        2,
    )


def test_opted_out_customers_are_removed_and_counted_and_formulas_neutralised(warehouse, tmp_path):
    prepared = prepare(warehouse, SMS)
    assert prepared.opted_out_removed == 1  # customer 3 said no to SMS; 4's opt-out is for e-mail only
    assert prepared.open_complaint_removed == 1  # customer 5 has open complaints: no promotion
    assert prepared.rows["customer_id"].tolist() == [1, 2, 4]
    assert not prepared.checked["has_formula_like_cell"].any()
    assert not prepared.checked["promotion_to_open_complaint"].any()

    manifest = write_exports(
        tmp_path / "exports", date(2025, 12, 31), [prepared], {"t": "passed"}, datetime(2026, 1, 1)
    )
    folder = tmp_path / "exports" / "2025-12-31"
    rows = read_export(folder / "lapsed_sms.csv")
    assert rows[0] == ["customer_id", "full_name", "phone", "phone_e164", "spend"]
    # Phones: the national form a spreadsheet keeps as typed; E.164 for machines, as is (a number, not a
    # formula). Money with two decimals.
    assert rows[1] == ["1", "Ana Lúcia", "(11) 99999-0001", "+5511999990001", "10,50"]
    assert rows[2] == ["2", "'" + HYPERLINK, "(11) 3333-4444", "+551133334444", "-3,25"]
    assert rows[3] == ["4", "'@Bruno", "+442071234567", "+442071234567", "0,00"]
    assert not any(is_formula_like(cell) for row in rows for cell in row[1:3])
    (entry,) = manifest["segments"]
    assert entry | {"sha256": None} == {
        "name": "lapsed_sms",
        "file": "lapsed_sms.csv",
        "channel": "sms",
        "purpose": "promotion",
        "owner": "crm",
        "rows": 3,
        "opted_out_removed": 1,
        "open_complaint_removed": 1,
        "unprofitable_removed": 0,
        "cells_cleaned": {"control_characters_removed": 0, "cut_at_cell_limit": 0},
        "columns": ["customer_id", "full_name", "phone", "phone_e164", "spend"],
        "sha256": None,
        "delimiter": ";",
        "decimal": ",",
        "encoding": "utf-8-sig",
    }
    assert entry["sha256"] == hashlib.sha256((folder / "lapsed_sms.csv").read_bytes()).hexdigest()
    assert json.loads((folder / "manifest.json").read_text()) == manifest
    assert manifest["as_of"] == "2025-12-31" and manifest["gates"] == {"t": "passed"}


def test_a_service_segment_keeps_customers_with_an_open_complaint_and_the_rule_can_be_turned_off(warehouse):
    service = prepare(warehouse, replace(SMS, purpose="service"))
    assert (service.open_complaint_removed, service.rows["customer_id"].tolist()) == (0, [1, 2, 4, 5])
    rule_off = prepare(warehouse, SMS, skip_open_complaints=False)
    assert (rule_off.open_complaint_removed, rule_off.rows["customer_id"].tolist()) == (0, [1, 2, 4, 5])


def test_cells_a_spreadsheet_cannot_hold_are_cleaned_and_counted(warehouse, tmp_path):
    long_name = "A" * 40_000
    warehouse.execute(
        "update segments.lapsed_sms set full_name = case customer_id when 1 then $nul when 2 then $bidi "
        "when 4 then $long else full_name end",
        {"nul": "Ana\x00 Lúcia", "bidi": "Caio \u202egnp.exe", "long": long_name},
    )
    prepared = prepare(warehouse, SMS)
    assert prepared.rows["full_name"].tolist() == ["Ana Lúcia", "Caio gnp.exe", "A" * 32_767]
    assert prepared.cells_cleaned == {"control_characters_removed": 2, "cut_at_cell_limit": 1}
    write_exports(tmp_path / "exports", date(2025, 12, 31), [prepared], {}, datetime(2026, 1, 1))
    rows = read_export(tmp_path / "exports" / "2025-12-31" / "lapsed_sms.csv")
    assert [row[1] for row in rows[1:]] == ["Ana Lúcia", "Caio gnp.exe", "A" * 32_767]


def test_the_delivery_of_a_run_exports_what_its_segment_gate_prepared_and_nothing_is_left_behind(
    warehouse, tmp_path
):
    """The segment gate keeps the rows it validated for the same run's delivery (one preparation per run);
    another run, or another definition of the segment, prepares again; after the delivery no copy is left."""
    prepared = prepare(warehouse, SMS)
    keep_prepared(tmp_path / "w.duckdb", "run-1", prepared)
    handed_over = prepared_by_gate(tmp_path / "w.duckdb", "run-1", SMS)
    assert handed_over is not None
    pd.testing.assert_frame_equal(handed_over.rows, prepared.rows)
    pd.testing.assert_frame_equal(handed_over.checked, prepared.checked)
    assert (handed_over.opted_out_removed, handed_over.open_complaint_removed) == (1, 1)
    assert prepared_by_gate(tmp_path / "w.duckdb", "run-2", SMS) is None
    assert prepared_by_gate(tmp_path / "w.duckdb", "run-1", replace(SMS, channel="email")) is None
    keep_prepared(tmp_path / "w.duckdb", "run-2", prepared)  # a later run: what run-1 left is removed
    assert [path.name for path in prepared_folder(tmp_path / "w.duckdb").iterdir()] == ["run-2"]
    forget_prepared(tmp_path / "w.duckdb")
    assert not prepared_folder(tmp_path / "w.duckdb").exists()


def test_a_missing_cell_is_not_counted_as_cleaned():
    """An empty cell (a customer without an offer has no reason) has nothing to clean; the manifest said
    9,088 control characters removed from a service-desk list that had none."""
    frame = pd.DataFrame(
        {"reason": pd.Series(["holds moda", None, None], dtype="str"), "name": ["Ana", None, "Caio\x07"]}
    )
    cleaned, counts = clean_text(frame)
    assert counts == {"control_characters_removed": 1, "cut_at_cell_limit": 0}
    assert cleaned["name"].tolist()[::2] == ["Ana", "Caio"] and cleaned["reason"].isna().tolist() == [
        False,
        True,
        True,
    ]


def test_formula_like_cells_are_found_in_text_and_mixed_columns_and_only_there():
    frame = pd.DataFrame(
        {
            "text": pd.Series(["=1+1", "Ana", None, "-x", "\tTab"], dtype="str"),
            "mixed": pd.Series(["@SUM(A1)", 5, None, "ok", "+55"], dtype=object),
            "amount": [-1.5, 2.0, 3.0, -4.0, 5.0],
        }
    )
    neutralised = neutralise(frame)
    assert neutralised["text"].tolist()[:2] + neutralised["text"].tolist()[3:] == [
        "'=1+1",
        "Ana",
        "'-x",
        "'\tTab",
    ]
    assert pd.isna(neutralised["text"][2])
    assert neutralised["mixed"].tolist()[:2] + neutralised["mixed"].tolist()[3:] == [
        "'@SUM(A1)",
        5,
        "ok",
        "'+55",
    ]
    assert neutralised["amount"].tolist() == [-1.5, 2.0, 3.0, -4.0, 5.0]  # numbers are never formulas
    assert [formula_like_cells(column).sum() for _, column in frame.items()] == [3, 2, 0]


def test_a_failed_export_leaves_the_previous_folder_untouched(warehouse, tmp_path):
    exports = tmp_path / "exports"
    write_exports(exports, date(2025, 12, 31), [prepare(warehouse, SMS)], {}, datetime(2026, 1, 1))
    before = {path.name: path.read_bytes() for path in (exports / "2025-12-31").iterdir()}
    broken = PreparedSegment(SMS, rows=None, opted_out_removed=0, checked=None)  # fails while writing
    with pytest.raises(AttributeError):
        write_exports(
            exports, date(2025, 12, 31), [prepare(warehouse, SMS), broken], {}, datetime(2026, 1, 2)
        )
    after = {path.name: path.read_bytes() for path in (exports / "2025-12-31").iterdir()}
    assert after == before
    assert [path.name for path in exports.iterdir()] == ["2025-12-31"]  # no partial folder left behind


def test_segment_meta_is_checked(tmp_path):
    def manifest(meta: dict) -> Path:
        path = tmp_path / "manifest.json"
        node = {
            "resource_type": "model",
            "name": "s",
            "tags": ["segment"],
            "config": {"meta": {"segment": meta}},
        }
        path.write_text(json.dumps({"nodes": {"model.x.s": node}}))
        return path

    good = {
        "channel": "email",
        "purpose": "promotion",
        "owner": "crm",
        "allowed_columns": ["customer_id", "email"],
    }
    assert segments_from_manifest(manifest(good), ["email"])[0].allowed_columns == ("customer_id", "email")
    with pytest.raises(SegmentDefinitionError, match="channel 'fax'"):
        segments_from_manifest(manifest(good | {"channel": "fax"}), ["email"])
    with pytest.raises(SegmentDefinitionError, match="purpose 'advert' must be one of promotion, service"):
        segments_from_manifest(manifest(good | {"purpose": "advert"}), ["email"])
    with pytest.raises(SegmentDefinitionError, match="start with customer_id"):
        segments_from_manifest(manifest(good | {"allowed_columns": ["email"]}), ["email"])


def test_a_clean_run_exports_consent_safe_segment_files_that_match_the_manifest(built_sample):
    folder, result = built_sample
    (export,) = [path for path in (folder / "exports").iterdir() if path.name != "validation"]
    manifest = json.loads((export / "manifest.json").read_text())
    segment_models = list((DBT_PROJECT_DIR / "models" / "segments").glob("*.sql"))
    assert manifest["as_of"] == export.name and len(manifest["segments"]) == len(segment_models) == 10
    assert all(verdict == "passed" for verdict in manifest["gates"].values())
    assert {"marts.customer_360", "segments.champions_loyalty_email"} <= set(manifest["gates"])
    written = [entry for entry in manifest["segments"] if entry["rows"] > 0]
    assert len(written) >= 2
    with duckdb.connect(str(folder / "warehouse.duckdb"), read_only=True) as connection:
        for entry in manifest["segments"]:
            rows = read_export(export / entry["file"])
            assert rows[0] == entry["columns"] and rows[0][0] == "customer_id"
            assert len(rows) - 1 == entry["rows"]
            assert hashlib.sha256((export / entry["file"]).read_bytes()).hexdigest() == entry["sha256"]
            assert not any(is_formula_like(cell) for row in rows for cell in row)
            exported_ids = [int(row[0]) for row in rows[1:]]
            opted_out = connection.execute(
                "select count(*) from marts.customer_consents "
                "where channel = $channel and status = 'opt_out' and list_contains($ids, customer_id)",
                {"channel": entry["channel"], "ids": exported_ids},
            ).fetchone()[0]
            in_segment = connection.execute(f"select count(*) from segments.{entry['name']}").fetchone()[0]
            open_complaints = connection.execute(
                "select count(*) from marts.customer_360 where open_complaints > 0 and list_contains($ids, customer_id)",
                {"ids": exported_ids},
            ).fetchone()[0]
            assert opted_out == 0
            assert (
                open_complaints == 0
                if entry["purpose"] == "promotion"
                else entry["open_complaint_removed"] == 0
            )
            removed = (
                entry["opted_out_removed"] + entry["open_complaint_removed"] + entry["unprofitable_removed"]
            )
            assert entry["rows"] + removed == in_segment
            header = rows[0]
            for row in rows[1:]:
                cells = dict(zip(header, row, strict=True))
                if cells.get("phone"):
                    assert re.fullmatch(r"\(\d{2}\) \d{4,5}-\d{4}", cells["phone"]), cells["phone"]
                    assert cells["phone_e164"].startswith("+55")
                for money in (
                    "clv",
                    "lifetime_spend",
                    "expected_incremental_profit",
                    "complaint_recovery_allowance",
                ):
                    if cells.get(money):
                        assert re.fullmatch(r"-?\d+,\d{2}", cells[money]), cells[money]
            # The serving file's segment table holds exactly the exported customers (defect: it held the view).
            with duckdb.connect(str(folder / "serving.duckdb"), read_only=True) as serving:
                published = [
                    row[0]
                    for row in serving.execute(
                        f"select customer_id from segments.{entry['name']} order by customer_id"
                    ).fetchall()
                ]
            assert published == exported_ids
    assert sum(entry["opted_out_removed"] for entry in manifest["segments"]) > 0  # the sample has opt-outs
    assert sum(entry["open_complaint_removed"] for entry in manifest["segments"]) > 0  # and open complaints
    assert result.success
    assert not prepared_folder(folder / "warehouse.duckdb").exists()  # no customer rows left beside it
