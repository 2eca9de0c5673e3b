"""Print where the warehouse is and what it holds: ``python -m dagster_project.summary``."""

from __future__ import annotations

from dagster_project.lib.settings import Settings
from dagster_project.lib.warehouse import connect, table_row_counts


def main() -> None:
    settings = Settings.load()
    if not settings.warehouse.exists():
        raise SystemExit(f"no warehouse at {settings.warehouse}: run `make run` first")
    with connect(settings.warehouse, read_only=True) as connection:
        counts = table_row_counts(connection)
        rejected = (
            connection.execute("select count(*) from raw._load_log where status = 'rejected'").fetchone()[0]
            if any(name == "_load_log" for _, name, _, _ in counts)
            else 0
        )
    print(f"\nwarehouse: {settings.warehouse}\nraw extracts: {settings.raw_dir}\n")
    print(f"{'relation':<48}{'kind':<7}{'rows':>12}")
    for schema, name, kind, rows in counts:
        print(f"{schema + '.' + name:<48}{kind:<7}{rows:>12,}")
    if rejected:
        print(f"\n{rejected} file load(s) rejected: select * from raw._load_log where status = 'rejected'")


if __name__ == "__main__":
    main()
