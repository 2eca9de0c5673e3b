"""Quality assets: how well identity matching did (and, later, the blocking data-quality gates)."""

from datetime import UTC, datetime

import dagster as dg

from dagster_project.defs.resources import WAREHOUSE_POOL, SettingsResource
from dagster_project.lib.identity_quality import measure, record, scores_as_dict
from dagster_project.lib.warehouse import connect


@dg.asset(
    key=["marts", "identity_match_quality"],
    group_name="marts",
    kinds={"python", "duckdb"},
    pool=WAREHOUSE_POOL,
    deps=[
        dg.AssetKey(["marts", "customer_id_map"]),
        dg.AssetKey(["marts", "dim_customers"]),
        dg.AssetKey(["intermediate", "int_identity_keys_blocked"]),
    ],
)
def identity_match_quality(
    context: dg.AssetExecutionContext, settings: SettingsResource
) -> dg.MaterializeResult:
    """One row per run: source records, customers, cluster-size distribution, largest clusters, blocked key
    values and key issues by type, and pairwise precision/recall against the truth file when one is given
    (C360_IDENTITY_TRUTH, or truth/identity.csv beside the raw folder). Counts only, no personal data."""
    config = settings.get()
    truth_file = config.identity_truth_file
    with connect(config.warehouse) as connection:
        quality = measure(connection, truth_file, datetime.now(UTC).replace(tzinfo=None))
        record(connection, quality)
        rows = connection.execute("select count(*) from marts.identity_match_quality").fetchone()[0]
    metadata: dict[str, object] = {
        "dagster/row_count": rows,
        "source_records": quality.source_records,
        "records_without_customer_file": quality.records_without_customer_file,
        "customers": quality.customers,
        "cluster_sizes": dg.MetadataValue.json({str(size): n for size, n in quality.cluster_sizes.items()}),
        "largest_clusters": dg.MetadataValue.json(quality.largest_clusters),
        "blocked_keys": dg.MetadataValue.json(quality.blocked_keys),
        "key_issues": dg.MetadataValue.json(quality.key_issues),
    }
    if quality.scores:
        metadata.update({f"pairwise_{name}": value for name, value in scores_as_dict(quality.scores).items()})
        metadata["truth_file"] = quality.truth_file
        context.log.info(
            f"identity matching: precision {quality.scores.precision:.4f}, recall {quality.scores.recall:.4f}"
        )
    return dg.MaterializeResult(metadata=metadata)


defs = dg.Definitions(assets=[identity_match_quality])
