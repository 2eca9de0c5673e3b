"""File ingestion on the real DuckDB: dialects, quarantine, rejection and the load-once ledger."""

from __future__ import annotations

import gzip
import shutil
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from dagster_project.lib.contracts import FAMILIES_BY_NAME
from dagster_project.lib.ingest import load_family

PURCHASES = FAMILIES_BY_NAME["purchases"]
LEGACY_SOURCES = """
sources:
  loja:
    encoding: latin-1
    delimiter: ";"
    decimal_separator: ","
    thousands_separator: "."
    date_formats: ["%d/%m/%Y"]
    timestamp_formats: ["%d/%m/%Y %H:%M"]
    columns:
      customers: {cod_cliente: source_customer_id, nome: full_name, cidade: city, data_nascimento: birth_date}
      purchases: {num_cupom: order_id, cod_cliente: source_customer_id, data_venda: purchased_at, valor_total: amount, qtde: quantity}
"""


def write(path: Path, text: str, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(text.encode(encoding))
    return path


@pytest.fixture
def connection() -> duckdb.DuckDBPyConnection:
    with duckdb.connect() as connection:
        yield connection


def load(connection, raw: Path, family: str = "purchases", max_share: float = 0.5):
    return load_family(connection, raw, FAMILIES_BY_NAME[family], max_share)


def test_legacy_dialect_values_are_parsed_correctly(tmp_path, connection):
    raw = tmp_path / "raw"
    write(raw / "sources.yml", LEGACY_SOURCES)
    write(
        raw / "customers/loja/clientes.csv",
        "cod_cliente;nome;cidade;data_nascimento\nL1;João Conceição;São Paulo;31/01/2024\n",
        encoding="latin-1",
    )
    write(
        raw / "purchases/loja/vendas.csv",
        "num_cupom;cod_cliente;data_venda;valor_total;qtde\n"
        "C1;L1;31/01/2024 14:05;1.234,56;2\nC2;L1;01/02/2024 09:00;-12,5;1,00\nC3;L1;02/02/2024 10:00;1.234.567,89;1\n",
        encoding="latin-1",
    )
    load(connection, raw, "customers")
    load(connection, raw, "purchases")
    customer = connection.execute("select full_name, city, birth_date from raw.customers").fetchone()
    assert customer == ("João Conceição", "São Paulo", date(2024, 1, 31))
    purchases = connection.execute(
        "select order_id, amount, quantity, purchased_at, _source_system from raw.purchases order by order_id"
    ).fetchall()
    assert purchases == [
        ("C1", Decimal("1234.56"), 2, datetime(2024, 1, 31, 14, 5), "loja"),
        ("C2", Decimal("-12.5"), 1, datetime(2024, 2, 1, 9, 0), "loja"),
        ("C3", Decimal("1234567.89"), 1, datetime(2024, 2, 2, 10, 0), "loja"),
    ]


def test_a_whole_number_may_carry_thousands_and_zero_decimals_but_nothing_else(tmp_path, connection):
    raw = tmp_path / "raw"
    write(raw / "sources.yml", LEGACY_SOURCES)
    write(
        raw / "purchases/loja/vendas.csv",
        "num_cupom;cod_cliente;data_venda;valor_total;qtde\n"
        "C1;L1;31/01/2024 14:05;1,00;1.000\nC2;L1;31/01/2024 14:05;1,00;-2,000\n"
        "C3;L1;31/01/2024 14:05;1,00;1,5\nC4;L1;31/01/2024 14:05;1,00;99999999999999999999\n",
        encoding="latin-1",
    )
    load(connection, raw, "purchases")
    assert connection.execute("select order_id, quantity from raw.purchases order by 1").fetchall() == [
        ("C1", 1000),
        ("C2", -2),
    ]
    assert connection.execute(
        "select row_number, column_name, value, reason from raw._quarantine order by 1"
    ).fetchall() == [
        (
            3,
            "quantity",
            "1,5",
            "not a whole number (expected decimal separator ',', thousands separator '.')",
        ),
        (
            4,
            "quantity",
            "99999999999999999999",
            "not a whole number (expected decimal separator ',', thousands separator '.')",
        ),
    ]


def test_an_unparseable_value_is_quarantined_with_file_row_and_column(tmp_path, connection):
    raw = tmp_path / "raw"
    write(
        raw / "purchases/web/orders.csv",
        "order_id,source_customer_id,purchased_at,amount\n"
        "A1,c1,2024-01-01 10:00:00,10.50\nA2,c1,2024-13-45,11\nA3,c2,2024-01-03,12\nA4,,2024-01-04,1\n",
    )
    result = load(connection, raw)
    assert connection.execute("select order_id, _row_number from raw.purchases").fetchall() == [
        ("A1", 1),
        ("A3", 3),
    ]
    quarantined = connection.execute(
        "select file_path, row_number, column_name, value, reason from raw._quarantine order by row_number"
    ).fetchall()
    assert quarantined == [
        (
            "purchases/web/orders.csv",
            2,
            "purchased_at",
            "2024-13-45",
            "not a timestamp (expected YYYY-MM-DD[ HH:MM:SS])",
        ),
        ("purchases/web/orders.csv", 4, "source_customer_id", None, "required value is missing"),
    ]
    outcome = result.files[0]
    assert (outcome.status, outcome.rows_read, outcome.rows_loaded, outcome.rows_quarantined) == (
        "loaded",
        4,
        2,
        2,
    )
    assert "orders.csv" in outcome.message and "first row 2" in outcome.message


def test_a_line_the_csv_reader_cannot_split_is_quarantined_and_later_rows_keep_their_numbers(
    tmp_path, connection
):
    raw = tmp_path / "raw"
    write(
        raw / "purchases/web/orders.csv",
        "order_id,source_customer_id,purchased_at,amount\n"
        "A1,c1,2024-01-01,1\nA2,c1,2024-01-02,2,unexpected\nA3,c1,2024-01-03,3\nA4,c1,bad,4\nA5,c1,2024-01-05,5\n",
    )
    load(connection, raw)
    assert connection.execute("select order_id, _row_number from raw.purchases order by 2").fetchall() == [
        ("A1", 1),
        ("A3", 3),
        ("A5", 5),
    ]
    assert connection.execute(
        "select row_number, raw_record like 'A2,%' from raw._quarantine where column_name is null"
    ).fetchall() == [(2, True)]
    assert connection.execute(
        "select row_number, column_name from raw._quarantine where column_name is not null"
    ).fetchall() == [(4, "purchased_at")]


def test_a_file_missing_a_required_column_is_rejected_naming_file_and_column(tmp_path, connection):
    raw = tmp_path / "raw"
    write(raw / "purchases/web/no_amount.csv", "order_id,source_customer_id,purchased_at\nA1,c1,2024-01-01\n")
    result = load(connection, raw)
    (outcome,) = result.with_status("rejected")
    assert str(raw / "purchases/web/no_amount.csv") in outcome.message
    assert "'amount'" in outcome.message
    assert connection.execute("select count(*) from raw.purchases").fetchone() == (0,)
    # A rejected file is not in the ledger as loaded: the next run tries (and rejects) it again.
    assert load(connection, raw).with_status("rejected")


def test_redelivering_a_file_under_another_name_adds_nothing(tmp_path, connection):
    raw = tmp_path / "raw"
    original = write(
        raw / "purchases/web/orders.csv",
        "order_id,source_customer_id,purchased_at,amount\nA1,c1,2024-01-01,1\n",
    )
    load(connection, raw)
    shutil.copy(original, raw / "purchases/web/orders_resent.csv")
    second = load(connection, raw)
    assert [outcome.status for outcome in second.files] == ["already_loaded", "already_loaded"]
    assert connection.execute("select count(*) from raw.purchases").fetchone() == (1,)
    assert connection.execute("select count(*) from raw._load_log where status = 'loaded'").fetchone() == (1,)


def test_gzipped_csv_and_parquet_extracts_load(tmp_path, connection):
    raw = tmp_path / "raw"
    (raw / "purchases/web").mkdir(parents=True)
    with gzip.open(raw / "purchases/web/orders.csv.gz", "wt", encoding="utf-8") as handle:
        handle.write("order_id,source_customer_id,purchased_at,amount\nG1,c1,2024-01-01,1.25\n")
    pd.DataFrame(
        {
            "order_id": ["P1"],
            "source_customer_id": ["c2"],
            "purchased_at": [pd.Timestamp("2024-02-01 08:30")],
            "amount": [7.5],
        }
    ).to_parquet(raw / "purchases/web/orders.parquet")
    load(connection, raw)
    assert connection.execute(
        "select order_id, amount, purchased_at, _row_number from raw.purchases order by order_id"
    ).fetchall() == [
        ("G1", Decimal("1.25"), datetime(2024, 1, 1), 1),
        ("P1", Decimal("7.5"), datetime(2024, 2, 1, 8, 30), 1),
    ]


def test_a_file_above_the_quarantine_threshold_is_rejected_and_its_bad_rows_kept(tmp_path, connection):
    raw = tmp_path / "raw"
    write(
        raw / "purchases/web/orders.csv",
        "order_id,source_customer_id,purchased_at,amount\nA1,c1,2024-01-01,1\nA2,c1,yesterday,2\nA3,c1,today,3\n",
    )
    result = load(connection, raw, max_share=0.5)
    (outcome,) = result.with_status("rejected")
    assert "2 of 3 rows (66.7%)" in outcome.message
    assert connection.execute("select count(*) from raw.purchases").fetchone() == (0,)
    assert connection.execute("select count(*) from raw._quarantine").fetchone() == (2,)
    # Trying again does not pile up quarantine rows for the same file.
    load(connection, raw, max_share=0.5)
    assert connection.execute("select count(*) from raw._quarantine").fetchone() == (2,)


def test_files_outside_a_source_folder_or_of_unknown_kind_are_rejected(tmp_path, connection):
    raw = tmp_path / "raw"
    write(raw / "purchases/orders.csv", "order_id\n")
    write(raw / "purchases/web/orders.xlsx", "not really")
    messages = sorted(outcome.message for outcome in load(connection, raw).with_status("rejected"))
    assert "belong in" in messages[0] and "not an extract file" in messages[1]


def test_an_absent_family_gives_an_empty_table(tmp_path, connection):
    result = load(connection, tmp_path / "raw", "campaigns")
    assert result.files == [] and result.table_rows == 0
    assert connection.execute("select count(*) from raw.campaigns").fetchone() == (0,)


HEADER = "order_id,source_customer_id,purchased_at,amount\n"


def rejection_of(connection, raw: Path) -> str:
    (outcome,) = load(connection, raw).files
    assert outcome.status == "rejected"
    assert outcome.rows_loaded == 0
    return outcome.message


def test_a_header_naming_a_column_twice_is_rejected_naming_the_column(tmp_path, connection):
    raw = tmp_path / "raw"
    write(
        raw / "purchases/web/orders.csv",
        "order_id,source_customer_id,purchased_at,amount,Amount\nO1,C1,2024-01-02,10,99\n",
    )
    message = rejection_of(connection, raw)
    assert "orders.csv" in message and "'Amount' appears twice" in message and "columns 4 and 5" in message
    assert connection.execute("select count(*) from raw.purchases").fetchone() == (0,)


def test_an_empty_file_is_reported_as_empty(tmp_path, connection):
    raw = tmp_path / "raw"
    write(raw / "purchases/web/orders.csv", "")
    assert "the file is empty" in rejection_of(connection, raw)


def test_an_undeclared_semicolon_file_says_which_delimiter_to_declare(tmp_path, connection):
    raw = tmp_path / "raw"
    write(raw / "purchases/web/orders.csv", HEADER.replace(",", ";") + "O1;C1;2024-01-02;10\n")
    message = rejection_of(connection, raw)
    assert "looks ';'-delimited" in message and "declare `delimiter: ';'` for web in sources.yml" in message


def test_an_undeclared_utf16_file_says_which_encoding_to_declare(tmp_path, connection):
    raw = tmp_path / "raw"
    write(raw / "purchases/web/orders.csv", HEADER + "O1,C1,2024-01-02,10\n", encoding="utf-16")
    message = rejection_of(connection, raw)
    assert "looks UTF-16" in message and "declare `encoding: utf-16` for web in sources.yml" in message
    write(raw / "sources.yml", "sources:\n  web:\n    encoding: utf-16\n")
    (outcome,) = load(connection, raw).files
    assert (outcome.status, outcome.rows_loaded) == ("loaded", 1)


def test_a_copy_of_a_loaded_file_in_another_source_folder_is_logged_once_as_already_loaded(
    tmp_path, connection
):
    raw = tmp_path / "raw"
    content = HEADER + "O1,C1,2024-01-02,10\n"
    write(raw / "purchases/web/orders.csv", content)
    load(connection, raw)
    write(raw / "purchases/app/orders_copy.csv", content)
    load(connection, raw)
    load(connection, raw)
    logged = connection.execute(
        "select file_path, status, message from raw._load_log order by loaded_at, file_path"
    ).fetchall()
    assert [(path, status) for path, status, _ in logged] == [
        ("purchases/web/orders.csv", "loaded"),
        ("purchases/app/orders_copy.csv", "already_loaded"),
    ]
    assert "as purchases/web/orders.csv (same content)" in logged[1][2]
    assert connection.execute("select count(*) from raw.purchases").fetchone() == (1,)
