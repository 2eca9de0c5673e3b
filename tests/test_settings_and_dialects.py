"""Settings (C360_* variables) and sources.yml dialect declarations."""

from __future__ import annotations

from pathlib import Path

import pytest

from dagster_project.lib.dialects import DialectError, load_dialects
from dagster_project.lib.settings import Settings, SettingsError


def test_settings_come_from_overrides_then_environment_then_defaults(tmp_path):
    environ = {"C360_WAREHOUSE": str(tmp_path / "w.duckdb"), "C360_CLV_TIME_UNIT": "DAY"}
    settings = Settings.load({"clv_horizon": "12"}, environ=environ)
    assert settings.warehouse == tmp_path / "w.duckdb"
    assert settings.clv_time_unit == "day"
    assert settings.clv_horizon == 12
    assert settings.raw_dir == Path("data/raw").resolve()
    assert settings.as_of is None


def test_an_invalid_setting_names_its_variable():
    with pytest.raises(SettingsError, match=r"C360_MAX_QUARANTINE_SHARE='1.5' is not valid"):
        Settings.load(environ={"C360_MAX_QUARANTINE_SHARE": "1.5"})
    with pytest.raises(SettingsError, match="unknown setting"):
        Settings.load({"warehous": "x"}, environ={})
    # Nothing is silently clamped or guessed: a negative window, an unknown model, a bad date are errors.
    for variable, text in (
        ("C360_RFM_WINDOW_DAYS", "-30"),
        ("C360_CONTACT_COOLDOWN_DAYS", "-1"),
        ("C360_CLV_MODEL", "bgbnd"),
        ("C360_AS_OF", "2025-02-30"),
        ("C360_PROMOTIONS_SKIP_OPEN_COMPLAINTS", "maybe"),
        ("C360_ENGINE", "postgres"),
        ("C360_SPARK_CONF", "ui.enabled=true"),
        ("C360_SPARK_DRIVER_MEMORY", "lots"),
    ):
        with pytest.raises(SettingsError, match=f"{variable}='{text}' is not valid"):
            Settings.load(environ={variable: text})


def test_dbt_gets_only_the_variables_it_reads(tmp_path):
    settings = Settings.load({"warehouse": str(tmp_path / "w.duckdb")}, environ={})
    assert settings.dbt_environment() == {
        "C360_ENGINE": "duckdb",
        "C360_WAREHOUSE": str(tmp_path / "w.duckdb"),
        "C360_DUCKDB_MEMORY_LIMIT": "3GB",
    }


def test_sources_yml_errors_name_the_file_and_entry(tmp_path):
    declarations = {
        "encoding: cp1252": "encoding 'cp1252' is not supported",
        "columns:\n      purchases: {valor: valor_total}": "'valor_total' is not a purchases column",
    }
    for declaration, expected in declarations.items():
        (tmp_path / "sources.yml").write_text(f"sources:\n  loja:\n    {declaration}\n")
        with pytest.raises(DialectError) as error:
            load_dialects(tmp_path)
        assert str(error.value).startswith(f"{tmp_path / 'sources.yml'}: sources.loja")
        assert expected in str(error.value)


def test_headers_map_case_and_space_insensitively(tmp_path):
    (tmp_path / "sources.yml").write_text(
        "sources:\n  loja:\n    columns:\n      purchases: {Valor Total: amount}\n"
    )
    dialect = load_dialects(tmp_path)["loja"]
    assert dialect.canonical_name("purchases", " valor total ") == "amount"
    assert dialect.canonical_name("purchases", "Order_ID") == "order_id"


def test_dbt_var_defaults_match_the_settings_defaults():
    """dbt run by hand uses dbt_project.yml's defaults; Dagster passes Settings.dbt_vars(): they must agree."""
    import yaml

    from dagster_project.defs.resources import DBT_PROJECT_DIR

    declared = yaml.safe_load((DBT_PROJECT_DIR / "dbt_project.yml").read_text())["vars"]
    for name, value in Settings.load(environ={}).dbt_vars().items():
        assert declared[name] == value, name


def test_duckdb_takes_the_memory_limit_in_our_connections_and_in_dbts_profile(tmp_path):
    import duckdb

    from dagster_project.defs.resources import DBT_PROJECT_DIR
    from dagster_project.lib.warehouse import connect

    settings = Settings.load({"duckdb_memory_limit": "1536MiB"}, environ={})
    with connect(tmp_path / "w.duckdb", memory_limit=settings.duckdb_memory_limit) as connection:
        limit = connection.execute("select current_setting('memory_limit')").fetchone()[0]
    with duckdb.connect() as reference:
        reference.execute("set memory_limit = '1536MiB'")
        assert limit == reference.execute("select current_setting('memory_limit')").fetchone()[0]
    with pytest.raises(SettingsError, match="C360_DUCKDB_MEMORY_LIMIT='lots' is not valid"):
        Settings.load(environ={"C360_DUCKDB_MEMORY_LIMIT": "lots"})
    profile = (DBT_PROJECT_DIR / "profiles.yml").read_text()
    default = Settings.load(environ={}).duckdb_memory_limit
    assert f"memory_limit: \"{{{{ env_var('C360_DUCKDB_MEMORY_LIMIT', '{default}') }}}}\"" in profile
