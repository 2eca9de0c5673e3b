"""dbt assets: every model, seed and test of dbt/ (staging, intermediate, marts), built by `dbt build`."""

import json
from collections.abc import Iterator, Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, dbt_assets

from dagster_project.defs.resources import WAREHOUSE_POOL, SettingsResource, dbt_project, environment

dbt_project.prepare_if_dev()


class Translator(DagsterDbtTranslator):
    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        """Group models by their folder (staging, intermediate, marts, segments); seeds with staging."""
        fqn = dbt_resource_props.get("fqn", [])
        if dbt_resource_props.get("resource_type") == "seed" or len(fqn) < 3:
            return "staging"
        return fqn[1]


@dbt_assets(manifest=dbt_project.manifest_path, dagster_dbt_translator=Translator(), pool=WAREHOUSE_POOL)
def dbt_models(
    context: dg.AssetExecutionContext, dbt: DbtCliResource, settings: SettingsResource
) -> Iterator[Any]:
    """Run `dbt build` on the selected models with the run's settings in dbt's environment."""
    config = settings.get()
    with environment(config.as_environment()):
        yield from dbt.cli(["build", "--vars", json.dumps(config.dbt_vars())], context=context).stream()


defs = dg.Definitions(assets=[dbt_models])
