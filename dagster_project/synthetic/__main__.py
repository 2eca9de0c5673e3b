"""Command line of the generator: writes DIR/raw (extracts) and DIR/truth (the answers)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from dagster_project.synthetic.generator import generate


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m dagster_project.synthetic", description=__doc__)
    parser.add_argument("--customers", type=int, required=True, help="number of people")
    parser.add_argument("--seed", type=int, default=42, help="random seed: same seed, same files")
    parser.add_argument("--out", type=Path, required=True, help="output folder (raw/ and truth/ are written)")
    parser.add_argument("--end-date", default="2025-12-31", help="last day of the observation window")
    parser.add_argument("--years", type=int, default=4, help="length of the observation window")
    parser.add_argument(
        "--hold-back-last-day",
        action="store_true",
        help="write the last day's events as dated files in DIR/next_day/raw (the next delivery)",
    )
    parser.add_argument(
        "--no-key-share",
        type=float,
        default=0.0,
        help="share of the stores' buyers also in a loyalty club whose files hold no e-mail, phone or CPF "
        "(source system clube; default 0: no such source)",
    )
    arguments = parser.parse_args(argv)
    started = time.perf_counter()
    summary = generate(
        arguments.customers,
        arguments.seed,
        arguments.out,
        arguments.end_date,
        arguments.years,
        arguments.hold_back_last_day,
        arguments.no_key_share,
    )
    seconds = time.perf_counter() - started
    for relative, rows in summary["files"].items():
        print(f"{rows:>12,}  {arguments.out / 'raw' / relative}")
    for relative, rows in summary.get("next_day_files", {}).items():
        print(f"{rows:>12,}  {arguments.out / 'next_day' / 'raw' / relative}")
    print(
        f"generated {arguments.customers:,} people (seed {arguments.seed}) in {seconds:.1f}s -> {arguments.out}"
    )


if __name__ == "__main__":
    main()
