"""An opt-out that loads is honoured in that run, whatever else fails: a bad consent file delivered beside a
valid opt-out is rejected, the run fails, and the exports and serving file already delivered no longer hold
the customer who opted out."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import duckdb

from tests.conftest import copy_of, run_pipeline


def exported_ids(folder: Path, name: str) -> list[int]:
    (export,) = [path for path in (folder / "exports").iterdir() if path.name != "validation"]
    content = (export / f"{name}.csv").read_text(encoding="utf-8-sig")
    return [int(row[0]) for row in list(csv.reader(io.StringIO(content), delimiter=";"))[1:]]


def first_exported_customer(folder: Path, segment: str) -> tuple[list[int], int, str, str]:
    """The segment's exported ids, the first of them, and one of its source records (system, id)."""
    exported = exported_ids(folder, segment)
    with duckdb.connect(str(folder / "warehouse.duckdb"), read_only=True) as connection:
        source_system, source_id = connection.execute(
            "select source_system, source_customer_id from marts.customer_id_map where customer_id = $id limit 1",
            {"id": exported[0]},
        ).fetchone()
    return exported, exported[0], source_system, source_id


def test_a_valid_opt_out_is_honoured_when_a_bad_consent_file_fails_the_run(built_sample, tmp_path):
    folder = copy_of(built_sample[0], tmp_path / "built")
    segment = "champions_loyalty_email"
    before, customer, source_system, source_id = first_exported_customer(folder, segment)
    consents = folder / "raw" / "consents"
    (consents / source_system).mkdir(parents=True, exist_ok=True)
    (consents / source_system / "opt_out_2026-01-02.csv").write_text(
        f"source_customer_id,channel,status,recorded_at\n{source_id},E-mail,OPT-OUT,2026-01-02 10:00:00\n"
    )
    (consents / "crm" / "garbled_2026-01-02.csv").write_text(
        "source_customer_id,channel,status,recorded_at\nX1,email,maybe later,2026-01-02 10:00:00\n"
    )

    result = run_pipeline(folder / "raw", folder / "warehouse.duckdb")

    assert not result.success  # the garbled file's unknown status fails its raw gate
    after = exported_ids(folder, segment)
    assert customer not in after and len(after) == len(before) - 1
    (export,) = [path for path in (folder / "exports").iterdir() if path.name != "validation"]
    manifest = json.loads((export / "manifest.json").read_text())
    (entry,) = [entry for entry in manifest["segments"] if entry["name"] == segment]
    assert entry["rows"] == len(after) and "opt_outs_applied_at" in manifest
    with duckdb.connect(str(folder / "serving.duckdb"), read_only=True) as serving:
        published = [
            row[0] for row in serving.execute(f"select customer_id from segments.{segment}").fetchall()
        ]
    assert customer not in published and len(published) == len(after)
    others = [e for e in manifest["segments"] if e["channel"] != "email"]
    assert all(e["rows"] == len(exported_ids(folder, e["name"])) for e in others)  # other channels untouched


def test_an_opt_out_inside_a_file_its_raw_gate_rejects_is_honoured_and_the_file_loads_nothing(
    built_sample, tmp_path
):
    """The raw gate judges a file before it commits, so a rejected consent file's rows never reach raw; its
    opt-outs, read before they left, are honoured all the same (removing a customer from a list is the safe
    side)."""
    folder = copy_of(built_sample[0], tmp_path / "built")
    segment = "champions_loyalty_email"
    before, customer, source_system, source_id = first_exported_customer(folder, segment)
    consents = folder / "raw" / "consents" / source_system
    consents.mkdir(parents=True, exist_ok=True)
    (consents / "mixed_2026-01-02.csv").write_text(
        "source_customer_id,channel,status,recorded_at\n"
        f"{source_id},E-mail,OPT-OUT,2026-01-02 10:00:00\n"
        "X1,email,maybe later,2026-01-02 10:00:00\n"
    )

    result = run_pipeline(folder / "raw", folder / "warehouse.duckdb")

    assert not result.success
    after = exported_ids(folder, segment)
    assert customer not in after and len(after) == len(before) - 1
    with duckdb.connect(str(folder / "warehouse.duckdb"), read_only=True) as connection:
        in_raw = connection.execute(
            "select count(*) from raw.consents where _source_file like '%mixed_2026-01-02.csv'"
        ).fetchone()[0]
        status, gate_status = connection.execute(
            "select status, gate_status from raw._load_log where file_path like '%mixed_2026-01-02.csv'"
        ).fetchone()
        quarantined = connection.execute(
            "select row_number, column_name from raw._quarantine where file_path like '%mixed_2026-01-02.csv'"
        ).fetchall()
    assert in_raw == 0 and (status, gate_status) == ("rejected", "failed")
    assert quarantined == [(2, "status")]  # the delivered column, not the code key the suite judged
