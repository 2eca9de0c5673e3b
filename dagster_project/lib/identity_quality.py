"""Identity matching quality: cluster sizes, blocked keys, key issues, what each pass linked (the exact keys,
the probabilistic model) and, against a truth file, pairwise precision, recall and F1, of the customers and of
the exact pass alone (docs/identity.md). Counts only: no key values, no personal data."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import duckdb

from dagster_project.lib.identity_probabilistic import HISTOGRAM_BINS, LINKS_TABLE
from dagster_project.lib.warehouse import has_table, scalar

REPORT_TABLE = "marts.identity_match_quality"
EDGES = "intermediate.int_identity_edges"
PROBABILISTIC = "probabilistic"  # the key type of the probabilistic pass's edges


@dataclass(frozen=True)
class PairwiseScores:
    """Pairs of source records put in one customer (predicted) and belonging to one person (true)."""

    predicted_pairs: int
    true_pairs: int
    correct_pairs: int

    @property
    def precision(self) -> float:
        return self.correct_pairs / self.predicted_pairs if self.predicted_pairs else 1.0

    @property
    def recall(self) -> float:
        return self.correct_pairs / self.true_pairs if self.true_pairs else 1.0

    @property
    def f1(self) -> float:
        total = self.precision + self.recall
        return 2 * self.precision * self.recall / total if total else 0.0


@dataclass(frozen=True)
class MatchQuality:
    measured_at: datetime
    source_records: int
    records_without_customer_file: int
    customers: int
    cluster_sizes: dict[int, int]
    largest_clusters: list[int]
    blocked_keys: dict[str, int]
    key_issues: dict[str, int]
    links_by_pass: dict[str, int]
    match_probability_histogram: dict[str, int]
    review_queue: int
    scores: PairwiseScores | None
    scores_by_pass: dict[str, dict[str, float | int]]
    truth_file: str | None


def pairwise_scores(
    connection: duckdb.DuckDBPyConnection, truth_file: Path, clusters: str = "marts.customer_id_map"
) -> PairwiseScores:
    """Pairwise precision/recall of `clusters` (a relation of source_system, source_customer_id, customer_id:
    the customers by default) against truth (source_system, source_customer_id, person_id), over the records
    both know. Pairs are counted per group as n(n-1)/2."""
    row = connection.execute(
        f"""
        with truth as (
            select source_system, source_customer_id, person_id
            from read_csv($truth_file, all_varchar = true)
        ),
        joined as (
            select id_map.customer_id, truth.person_id
            from {clusters} as id_map
            inner join truth
                on id_map.source_system = truth.source_system
                and id_map.source_customer_id = truth.source_customer_id
        ),
        predicted as (select count(*) as records from joined group by customer_id),
        actual as (select count(*) as records from joined group by person_id),
        correct as (select count(*) as records from joined group by customer_id, person_id)
        select
            (select coalesce(sum(records * (records - 1) // 2), 0) from predicted),
            (select coalesce(sum(records * (records - 1) // 2), 0) from actual),
            (select coalesce(sum(records * (records - 1) // 2), 0) from correct)
        """,
        {"truth_file": str(truth_file)},
    ).fetchone()
    assert row is not None  # an aggregate: one row
    return PairwiseScores(int(row[0]), int(row[1]), int(row[2]))


def _exact_pass_clusters(connection: duckdb.DuckDBPyConnection) -> None:
    """Temp table _exact_clusters (source_system, source_customer_id, customer_id): the customers the exact
    keys alone would make, the connected components of the graph's edges with a key other than the
    probabilistic pass's (scipy's connected_components; a record without such an edge is its own)."""
    import numpy as np
    import pandas as pd
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    records = connection.execute(
        "select record_key, source_system, source_customer_id from intermediate.int_identity_clusters "
        "order by record_key"
    ).df()
    edges = connection.execute(
        f"select record_key, linked_record_key from {EDGES} "
        f"where len(list_filter(key_types, key_type -> key_type != '{PROBABILISTIC}')) > 0"
    ).df()
    index = pd.Index(records["record_key"])
    left, right = index.get_indexer(edges["record_key"]), index.get_indexer(edges["linked_record_key"])
    known = (left >= 0) & (right >= 0)
    graph = coo_matrix((np.ones(known.sum()), (left[known], right[known])), shape=(len(index), len(index)))
    records["customer_id"] = connected_components(graph, directed=False)[1]
    connection.register("_exact_clusters_frame", records)
    connection.execute("create or replace temp table _exact_clusters as select * from _exact_clusters_frame")
    connection.unregister("_exact_clusters_frame")


def _scores_by_pass(
    connection: duckdb.DuckDBPyConnection, truth_file: Path
) -> dict[str, dict[str, float | int]]:
    """Against the truth: the exact pass alone (its customers), both passes (the customers built), and the
    probabilistic pass's own `link` pairs (the share of them that are one person; its recall is not defined
    alone: it links only what the keys left apart)."""
    _exact_pass_clusters(connection)
    scores = {
        "exact": scores_as_dict(pairwise_scores(connection, truth_file, "_exact_clusters")),
        "exact_and_probabilistic": scores_as_dict(pairwise_scores(connection, truth_file)),
    }
    connection.execute("drop table _exact_clusters")
    if has_table(connection, "intermediate", LINKS_TABLE.split(".")[1]):
        row = connection.execute(
            f"""
            with truth as (
                select source_system || ':' || source_customer_id as record_key, person_id
                from read_csv($truth_file, all_varchar = true)
            )
            select count(*), count(*) filter (where left_truth.person_id = right_truth.person_id)
            from {LINKS_TABLE} as links
            inner join truth as left_truth on links.record_key = left_truth.record_key
            inner join truth as right_truth on links.linked_record_key = right_truth.record_key
            where links.decision = 'link'
            """,
            {"truth_file": str(truth_file)},
        ).fetchone()
        assert row is not None
        pairs, same_person = int(row[0]), int(row[1])
        scores["probabilistic_links"] = {
            "pairs": pairs,
            "same_person": same_person,
            "precision": same_person / pairs if pairs else 1.0,
        }
    return scores


def _pass_counts(connection: duckdb.DuckDBPyConnection) -> tuple[dict[str, int], dict[str, int], int]:
    """The record pairs each pass linked (edges with a key; edges of the model alone), the stored scored
    pairs by match probability in tenths, and the pairs waiting for review (marts.identity_review_queue)."""
    by_pass = dict(
        connection.execute(
            f"""
            select
                case when key_types = ['{PROBABILISTIC}'] then 'probabilistic_only' else 'exact' end,
                count(*) // 2  -- each pair is an edge both ways
            from {EDGES} group by 1 order by 1
            """
        ).fetchall()
    )
    by_pass["probabilistic"] = int(
        scalar(
            connection, f"select count(*) // 2 from {EDGES} where list_contains(key_types, '{PROBABILISTIC}')"
        )
    )
    if not has_table(connection, "intermediate", LINKS_TABLE.split(".")[1]):
        return by_pass, {}, 0
    histogram = {
        f"{low / HISTOGRAM_BINS:.1f}-{(low + 1) / HISTOGRAM_BINS:.1f}": count
        for low, count in connection.execute(
            f"select least(floor(match_probability * {HISTOGRAM_BINS}), {HISTOGRAM_BINS - 1})::int, count(*) "
            f"from {LINKS_TABLE} group by 1 order by 1"
        ).fetchall()
    }
    review = (
        int(scalar(connection, "select count(*) from marts.identity_review_queue"))
        if has_table(connection, "marts", "identity_review_queue")
        else 0
    )
    return by_pass, histogram, review


def measure(
    connection: duckdb.DuckDBPyConnection, truth_file: Path | None, measured_at: datetime
) -> MatchQuality:
    def number(sql: str) -> int:
        return int(scalar(connection, sql))

    def mapping(sql: str) -> dict:
        return dict(connection.execute(sql).fetchall())

    links_by_pass, histogram, review_queue = _pass_counts(connection)
    return MatchQuality(
        measured_at=measured_at,
        source_records=number("select count(*) from marts.customer_id_map"),
        records_without_customer_file=number(
            "select count(*) from marts.customer_id_map where not has_customer_record"
        ),
        customers=number("select count(*) from marts.dim_customers"),
        cluster_sizes=mapping(
            "select source_records, count(*) from marts.dim_customers group by all order by 1"
        ),
        largest_clusters=[
            row[0]
            for row in connection.execute(
                "select source_records from marts.dim_customers order by source_records desc limit 5"
            ).fetchall()
        ],
        blocked_keys=mapping(
            "select key_type, count(*) from intermediate.int_identity_keys_blocked group by all order by 1"
        ),
        key_issues=mapping(
            """
            select key_type || ': ' || issue, count(*)
            from (
                unpivot (select email_issue, phone_issue, document_issue, loyalty_issue from staging.stg_raw__customers)
                on email_issue, phone_issue, document_issue, loyalty_issue into name key_type value issue
            )
            group by all order by 1
            """
        ),
        links_by_pass=links_by_pass,
        match_probability_histogram=histogram,
        review_queue=review_queue,
        scores=pairwise_scores(connection, truth_file) if truth_file else None,
        scores_by_pass=_scores_by_pass(connection, truth_file) if truth_file else {},
        truth_file=str(truth_file) if truth_file else None,
    )


# Columns added after the first release: a warehouse that has the report gets them (null in older rows).
ADDED_COLUMNS = {
    "pairwise_f1": "double",
    "links_by_pass": "json",
    "match_probability_histogram": "json",
    "review_queue": "bigint",
    "scores_by_pass": "json",
}


def record(connection: duckdb.DuckDBPyConnection, quality: MatchQuality) -> None:
    """Append the measurement to marts.identity_match_quality (one row per run)."""
    connection.execute(
        f"""
        create table if not exists {REPORT_TABLE} (
            measured_at timestamp, source_records bigint, records_without_customer_file bigint,
            customers bigint, cluster_sizes json, largest_clusters json, blocked_keys json, key_issues json,
            pairwise_precision double, pairwise_recall double, truth_file varchar
        )
        """
    )
    for column, data_type in ADDED_COLUMNS.items():
        connection.execute(f"alter table {REPORT_TABLE} add column if not exists {column} {data_type}")
    connection.execute(
        f"insert into {REPORT_TABLE} by name select $at as measured_at, $records as source_records, "
        "$orphans as records_without_customer_file, $customers as customers, $sizes as cluster_sizes, "
        "$largest as largest_clusters, $blocked as blocked_keys, $issues as key_issues, "
        "$precision as pairwise_precision, $recall as pairwise_recall, $truth as truth_file, $f1 as pairwise_f1, "
        "$by_pass as links_by_pass, $histogram as match_probability_histogram, $review as review_queue, "
        "$scores_by_pass as scores_by_pass",
        {
            "at": quality.measured_at,
            "records": quality.source_records,
            "orphans": quality.records_without_customer_file,
            "customers": quality.customers,
            "sizes": json.dumps({str(size): count for size, count in quality.cluster_sizes.items()}),
            "largest": json.dumps(quality.largest_clusters),
            "blocked": json.dumps(quality.blocked_keys),
            "issues": json.dumps(quality.key_issues),
            "precision": quality.scores.precision if quality.scores else None,
            "recall": quality.scores.recall if quality.scores else None,
            "truth": quality.truth_file,
            "f1": quality.scores.f1 if quality.scores else None,
            "by_pass": json.dumps(quality.links_by_pass),
            "histogram": json.dumps(quality.match_probability_histogram),
            "review": quality.review_queue,
            "scores_by_pass": json.dumps(quality.scores_by_pass),
        },
    )


def scores_as_dict(scores: PairwiseScores) -> dict[str, float | int]:
    return {**asdict(scores), "precision": scores.precision, "recall": scores.recall, "f1": scores.f1}
