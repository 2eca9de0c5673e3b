"""Write generated frames as extract files: canonical CSV (optionally gzipped), Parquet, or the legacy
dialect of a Brazilian store system (Latin-1, ';', decimal comma with thousands dot, dd/mm/yyyy)."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

LEGACY_DIALECT = {
    "encoding": "latin-1",
    "delimiter": ";",
    "decimal_separator": ",",
    "thousands_separator": ".",
    "date_formats": ["%d/%m/%Y"],
    "timestamp_formats": ["%d/%m/%Y %H:%M:%S", "%d/%m/%Y %H:%M"],
}


def _table(frame: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(frame, preserve_index=False)


def write_csv(frame: pd.DataFrame, path: Path, delimiter: str = ",") -> None:
    """UTF-8 CSV with a header; gzipped when the name ends in .gz."""
    path.parent.mkdir(parents=True, exist_ok=True)
    options = pa_csv.WriteOptions(delimiter=delimiter, quoting_style="needed")
    if path.name.endswith(".gz"):
        with pa.CompressedOutputStream(str(path), "gzip") as stream:
            pa_csv.write_csv(_table(frame), stream, write_options=options)
    else:
        pa_csv.write_csv(_table(frame), str(path), write_options=options)


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(_table(frame), str(path))


def write_legacy_csv(
    frame: pd.DataFrame,
    path: Path,
    renames: dict[str, str],
    dates: tuple[str, ...] = (),
    timestamps: tuple[str, ...] = (),
    decimals: tuple[str, ...] = (),
) -> None:
    """The legacy dialect: columns renamed, numbers as 1.234,56, dates as dd/mm/yyyy, Latin-1 bytes."""
    connection = duckdb.connect()
    connection.execute("set enable_progress_bar = false")
    connection.register("frame", frame)
    expressions = []
    for column in frame.columns:
        quoted = '"' + column.replace('"', '""') + '"'
        if column in dates:
            expression = f"strftime({quoted}::date, '%d/%m/%Y')"
        elif column in timestamps:
            expression = f"strftime({quoted}::timestamp, '%d/%m/%Y %H:%M')"
        elif column in decimals:
            expression = f"translate(format('{{:,.2f}}', {quoted}::double), ',.', '.,')"
        else:
            expression = quoted
        target = renames.get(column, column)
        expressions.append(f'{expression} as "{target}"')
    formatted = connection.sql(f"select {', '.join(expressions)} from frame").arrow()
    if isinstance(formatted, pa.RecordBatchReader):
        formatted = formatted.read_all()
    path.parent.mkdir(parents=True, exist_ok=True)
    utf8_path = path.with_name(path.name + ".utf8")
    pa_csv.write_csv(formatted, str(utf8_path), write_options=pa_csv.WriteOptions(delimiter=";"))
    with utf8_path.open(encoding="utf-8") as source, path.open("w", encoding="latin-1", newline="") as target:
        while chunk := source.read(1 << 24):
            target.write(chunk)
    utf8_path.unlink()
