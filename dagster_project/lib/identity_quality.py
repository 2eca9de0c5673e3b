"""Identity matching quality: cluster sizes, blocked keys, key issues and, against a truth file,
pairwise precision and recall (docs/identity.md). Counts only: no key values, no personal data."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import duckdb

from dagster_project.lib.warehouse import scalar

REPORT_TABLE = "marts.identity_match_quality"


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
    scores: PairwiseScores | None
    truth_file: str | None


def pairwise_scores(connection: duckdb.DuckDBPyConnection, truth_file: Path) -> PairwiseScores:
    """Pairwise precision/recall of customer_id_map against truth (source_system, source_customer_id,
    person_id), over the records both know. Pairs are counted per group as n(n-1)/2."""
    row = connection.execute(
        """
        with truth as (
            select source_system, source_customer_id, person_id
            from read_csv($truth_file, all_varchar = true)
        ),
        joined as (
            select id_map.customer_id, truth.person_id
            from marts.customer_id_map as id_map
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


def measure(
    connection: duckdb.DuckDBPyConnection, truth_file: Path | None, measured_at: datetime
) -> MatchQuality:
    def number(sql: str) -> int:
        return int(scalar(connection, sql))

    def mapping(sql: str) -> dict:
        return dict(connection.execute(sql).fetchall())

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
        scores=pairwise_scores(connection, truth_file) if truth_file else None,
        truth_file=str(truth_file) if truth_file else None,
    )


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
    connection.execute(
        f"insert into {REPORT_TABLE} values ($at, $records, $orphans, $customers, $sizes, $largest, $blocked, "
        "$issues, $precision, $recall, $truth)",
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
        },
    )


def scores_as_dict(scores: PairwiseScores) -> dict[str, float | int]:
    return {**asdict(scores), "precision": scores.precision, "recall": scores.recall}
