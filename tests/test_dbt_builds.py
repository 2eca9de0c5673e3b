"""When a dbt step rebuilds from scratch: first build, or dbt code or settings changed since the last success."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import duckdb

from dagster_project.lib import dbt_builds


def project(folder: Path) -> Path:
    for relative, text in {
        "dbt_project.yml": "name: p\n",
        "models/staging/stg_a.sql": "select 1 as a\n",
        "macros/m.sql": "{% macro m() %}1{% endmacro %}\n",
        "seeds/s.csv": "a\n1\n",
        "target/manifest.json": "{}",
    }.items():
        (folder / relative).parent.mkdir(parents=True, exist_ok=True)
        (folder / relative).write_text(text)
    return folder


def test_a_step_rebuilds_from_scratch_only_when_code_or_settings_changed(tmp_path):
    folder = project(tmp_path / "dbt")
    variables = {"as_of": "", "identity_max_records_per_key": 10}
    code = dbt_builds.fingerprint(folder, variables)
    with duckdb.connect() as connection:
        assert dbt_builds.needs_full_refresh(connection, "dbt_models", code)  # first build
        dbt_builds.start_build(connection, "dbt_models", code, True, "run-1", datetime(2026, 1, 1))
        assert dbt_builds.needs_full_refresh(connection, "dbt_models", code)  # started, not finished
        dbt_builds.finish_build(connection, "dbt_models", "run-1")
        assert not dbt_builds.needs_full_refresh(connection, "dbt_models", code)  # nothing changed
        assert dbt_builds.needs_full_refresh(connection, "dbt_models_after_clv", code)  # per step

        (folder / "target" / "manifest.json").write_text('{"changed": true}')  # build output, not code
        assert dbt_builds.fingerprint(folder, variables) == code
        changed_setting = dbt_builds.fingerprint(folder, {**variables, "identity_max_records_per_key": 5})
        (folder / "seeds" / "s.csv").write_text("a\n2\n")
        changed_seed = dbt_builds.fingerprint(folder, variables)
        assert len({code, changed_setting, changed_seed}) == 3
        assert dbt_builds.needs_full_refresh(connection, "dbt_models", changed_seed)

        dbt_builds.start_build(connection, "dbt_models", changed_seed, True, "run-2", datetime(2026, 1, 2))
        dbt_builds.finish_build(connection, "dbt_models", "run-2")
        assert not dbt_builds.needs_full_refresh(connection, "dbt_models", changed_seed)
        (folder / "macros" / "m.sql").write_text("{% macro m() %}2{% endmacro %}\n")
        assert dbt_builds.needs_full_refresh(
            connection, "dbt_models", dbt_builds.fingerprint(folder, variables)
        )

        # A build that stops half-way (dbt failed): the next one rebuilds from scratch, even with the same code.
        current = dbt_builds.fingerprint(folder, variables)
        dbt_builds.start_build(connection, "dbt_models", current, True, "run-3", datetime(2026, 1, 3))
        dbt_builds.finish_build(connection, "dbt_models", "run-3")
        dbt_builds.start_build(connection, "dbt_models", current, False, "run-4", datetime(2026, 1, 4))
        assert dbt_builds.needs_full_refresh(connection, "dbt_models", current)


def test_a_log_written_before_failed_builds_were_logged_holds_successes():
    with duckdb.connect() as connection:
        connection.execute("create schema raw")
        connection.execute(
            f"create table {dbt_builds.BUILD_LOG} "
            "(step varchar, fingerprint varchar, full_refresh boolean, run_id varchar, built_at timestamp)"
        )
        connection.execute(
            f"insert into {dbt_builds.BUILD_LOG} values ('dbt_models', 'abc', true, 'run-1', '2026-01-01')"
        )
        assert not dbt_builds.needs_full_refresh(connection, "dbt_models", "abc")


def test_a_dbt_step_starts_from_the_newest_parse_of_its_sibling_steps(tmp_path):
    first, second = tmp_path / "dbt_models", tmp_path / "dbt_models_after_clv"
    first.mkdir()
    (first / dbt_builds.PARTIAL_PARSE).write_bytes(b"parsed by the first step")
    dbt_builds.share_partial_parse(second)  # no parse of its own yet: the sibling's
    assert (second / dbt_builds.PARTIAL_PARSE).read_bytes() == b"parsed by the first step"
    os.utime(first / dbt_builds.PARTIAL_PARSE, (1, 1))  # the sibling's is now the older one
    (second / dbt_builds.PARTIAL_PARSE).write_bytes(b"parsed again by the second step")
    dbt_builds.share_partial_parse(second)  # its own is newer: kept
    assert (second / dbt_builds.PARTIAL_PARSE).read_bytes() == b"parsed again by the second step"
    dbt_builds.share_partial_parse(first)  # and the first step now starts from it
    assert (first / dbt_builds.PARTIAL_PARSE).read_bytes() == b"parsed again by the second step"
