"""The probabilistic pass of identity (docs/identity.md; lib/identity_probabilistic.py): the records of
intermediate.int_identity_person_features compared with the committed Splink model (C360_IDENTITY_MODEL,
identity/model.json unless set; written by `make train-identity`), between the dbt step that builds them and the identity graph, which reads
the pairs decided `link` as edges. A run compares the records changed since the last pass with all of them."""

import json
from datetime import UTC, datetime

import dagster as dg

from dagster_project.defs.resources import WAREHOUSE_POOL, SettingsResource, WarehouseResource
from dagster_project.lib import identity_probabilistic

FEATURES = dg.AssetKey(["intermediate", "int_identity_person_features"])


@dg.asset(
    key=["intermediate", "int_identity_probabilistic_links"],
    deps=[FEATURES],
    group_name="intermediate",
    kinds={"python", "splink", "duckdb"},
    pool=WAREHOUSE_POOL,
    description="One row per record pair the committed probabilistic model scores at least "
    "C360_IDENTITY_REVIEW_PROBABILITY likely to be one person, with its decision (link, review, household, "
    "capped, conflicting_document), match weight and probability and the comparison levels that decided it.",
)
def identity_probabilistic_links(
    context: dg.AssetExecutionContext, settings: SettingsResource, warehouse: WarehouseResource
) -> dg.MaterializeResult:
    config = settings.get()
    at = datetime.now(UTC).replace(tzinfo=None)
    options = identity_probabilistic.LinkOptions.of(config)
    with warehouse.connect() as connection:
        if config.identity_model is None or not config.identity_model.is_file():
            identity_probabilistic.forget_links(connection)
            reason = (
                "C360_IDENTITY_MODEL is empty (unset, it is the committed identity/model.json)"
                if config.identity_model is None
                else f"no model at {config.identity_model} (make train-identity writes one)"
            )
            context.log.info(
                f"probabilistic identity pass off: {reason}; records are linked by exact keys only"
            )
            return dg.MaterializeResult(metadata={"mode": "off", "reason": reason})
        model = json.loads(config.identity_model.read_text(encoding="utf-8"))
        run = identity_probabilistic.link(connection, model, options, at)
    context.log.info(
        f"probabilistic identity ({run.mode}): {run.records_compared} records compared, "
        + ", ".join(f"{count} {decision}" for decision, count in sorted(run.decisions.items()))
        + f" ({run.seconds:.1f} s)"
    )
    return dg.MaterializeResult(
        metadata={
            "mode": run.mode,
            "records_compared": run.records_compared,
            "pairs_kept": run.pairs_kept,
            **{
                f"pairs_{decision}": run.decisions.get(decision, 0)
                for decision in identity_probabilistic.DECISIONS
            },
            "match_probability_histogram": dg.MetadataValue.json(run.histogram),
            "seconds": run.seconds,
            "model": str(config.identity_model),
        }
    )


defs = dg.Definitions(assets=[identity_probabilistic_links])
