"""`make train-identity`: train the probabilistic identity model on a built warehouse's records and write it
where runs read it (C360_IDENTITY_MODEL; written by default to identity/model.json, versioned with the code).

Training needs no labels: u (how often two different people agree by chance) by random sampling of record
pairs, m (how often one person's records agree) by expectation maximisation on pairs blocked by birth date,
then by CEP. Run `make run` first (it builds intermediate.int_identity_person_features), then this; commit the
model, and the next run compares every record again with it (docs/identity.md)."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from dagster_project.lib import identity_probabilistic
from dagster_project.lib.settings import Settings
from dagster_project.lib.warehouse import connect, scalar
from dagster_project.paths import IDENTITY_MODEL


def main(argv: list[str] | None = None) -> None:
    settings = Settings.load()
    parser = argparse.ArgumentParser(prog="python -m dagster_project.train_identity", description=__doc__)
    parser.add_argument(
        "--warehouse", type=Path, default=settings.warehouse, help="a warehouse built by make run"
    )
    parser.add_argument(
        "--out", type=Path, default=settings.identity_model or IDENTITY_MODEL, help="where to write the model"
    )
    parser.add_argument("--seed", type=int, default=1, help="seed of the random pairs that estimate u")
    arguments = parser.parse_args(argv)
    started = time.perf_counter()
    with connect(arguments.warehouse) as connection:
        records = scalar(connection, f"select count(*) from {identity_probabilistic.FEATURES_RELATION}")
        model = identity_probabilistic.train(
            connection, identity_probabilistic.FEATURES_RELATION, seed=arguments.seed
        )
    arguments.out.parent.mkdir(parents=True, exist_ok=True)
    arguments.out.write_text(json.dumps(model, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    print(
        f"trained on {records:,} records of {arguments.warehouse} in {time.perf_counter() - started:.1f} s "
        f"-> {arguments.out}"
    )


if __name__ == "__main__":
    main()
