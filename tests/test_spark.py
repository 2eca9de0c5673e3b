"""C360_ENGINE=spark builds what DuckDB builds (docs/spark.md). `make test-spark` runs these (marker `spark`):
each dataset runs through the whole pipeline on both engines the way `make run` runs it (its own process, real
Dagster, real dbt on DuckDB and on a local Spark Connect server), and every table of the two serving files is
compared: the same columns, the same rows (EXCEPT ALL both ways over every column but the run's own times and
ids), floats within 1e-9 relative (absolute below 1), the CLV fit's parameters within 1e-6."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from dagster_project.defs.resources import DBT_PROJECT_DIR
from dagster_project.lib import spark
from dagster_project.lib.settings import Settings

pytestmark = pytest.mark.spark

REPOSITORY = Path(__file__).parents[1]
# Columns that hold when a run did something or the run's own ids: they differ between any two runs.
VOLATILE = {
    "loaded_at", "built_at", "created_at", "fitted_at", "fit_seconds", "fit_id", "checked_at", "scored_at",
    "measured_at", "published_at", "run_id", "model_version",
}  # fmt: skip
# The CLV fit's parameters (JSON text): compared apart, within 1e-6 (clv_parameters).
COMPARED_APART = {"parameters"}
FLOAT_TYPES = ("DOUBLE", "FLOAT", "REAL")
RELATIVE_TOLERANCE = 1e-9
# A decimal column may differ by one unit of its last place: a double the engines computed 1e-10 apart (sums
# added in another order), cast to decimals, rounds a tie either way (at 1,000,000 customers: 12 CLVs).
DECIMAL_SCALE = re.compile(r"DECIMAL\(\d+,(\d+)\)")


def run(raw: Path, folder: Path, engine: str, **settings: str) -> str:
    """`make run` on `raw` into `folder` with C360_ENGINE=`engine` (and more C360_ settings); its summary."""
    dagster_home = folder / "dagster_home"
    dagster_home.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPOSITORY / "dagster_home" / "dagster.yaml", dagster_home)
    environment = {
        **{name: value for name, value in os.environ.items() if not name.startswith("C360_")},
        "C360_RAW_DIR": str(raw),
        "C360_WAREHOUSE": str(folder / "warehouse.duckdb"),
        "C360_EXPORT_DIR": str(folder / "exports"),
        "C360_SERVING": str(folder / "serving.duckdb"),
        "C360_ENGINE": engine,
        "C360_SPARK_DIR": str(folder / "spark"),
        **{f"C360_{name.upper()}": value for name, value in settings.items()},
        "DAGSTER_HOME": str(dagster_home),
        "DBT_PROFILES_DIR": str(DBT_PROJECT_DIR),
    }
    finished = subprocess.run(
        [sys.executable, "-m", "dagster_project.run"],
        cwd=REPOSITORY,
        env=environment,
        capture_output=True,
        text=True,
        timeout=1800,
    )
    assert finished.returncode == 0, finished.stdout[-4000:] + finished.stderr[-4000:]
    assert " succeeded in " in finished.stdout
    return finished.stdout


def differences(expected: Path, actual: Path) -> list[str]:
    """What differs between two serving files, table by table (empty when they agree)."""
    problems = []
    with duckdb.connect() as connection:
        connection.execute(f"attach '{expected}' as expected (read_only)")
        connection.execute(f"attach '{actual}' as actual (read_only)")
        relations = connection.execute(
            "select table_schema, table_name from information_schema.tables where table_catalog = 'expected' "
            "and table_schema not in ('information_schema', 'pg_catalog') order by all"
        ).fetchall()
        assert len(relations) > 40
        for schema, name in relations:
            columns = [
                dict(
                    connection.execute(
                        "select column_name, data_type from information_schema.columns "
                        "where table_catalog = $catalog and table_schema = $schema and table_name = $name",
                        {"catalog": catalog, "schema": schema, "name": name},
                    ).fetchall()
                )
                for catalog in ("expected", "actual")
            ]
            if set(columns[0]) != set(columns[1]):
                problems.append(f"{schema}.{name}: columns {sorted(set(columns[0]) ^ set(columns[1]))}")
                continue
            types = columns[0]
            compared = [column for column in types if column not in VOLATILE | COMPARED_APART]
            approximate = {
                column: types[column]
                for column in compared
                if types[column] in FLOAT_TYPES or _scale(types[column]) is not None
            }
            exact = [column for column in compared if column not in approximate]
            listed = ", ".join(f'"{column}"' for column in exact) or "1"
            table_problems = []
            for left, right in (("expected", "actual"), ("actual", "expected")):
                extra = connection.execute(
                    f"select count(*) from (select {listed} from {left}.{schema}.{name} "
                    f"except all select {listed} from {right}.{schema}.{name})"
                ).fetchone()[0]
                if extra:
                    table_problems.append(f"{schema}.{name}: {extra} row(s) of {left} not in {right}")
            if approximate and not table_problems:  # rows pair up only when the exact columns agree
                table_problems += _float_differences(connection, schema, name, exact, approximate)
            problems += table_problems
    return problems


def _scale(data_type: str) -> int | None:
    """The decimal places of a DECIMAL type, None for another type."""
    match = DECIMAL_SCALE.fullmatch(data_type)
    return int(match.group(1)) if match else None


def _float_differences(
    connection: duckdb.DuckDBPyConnection, schema: str, name: str, exact: list[str], floats: dict[str, str]
) -> list[str]:
    """Rows paired by their exact columns, then their floats and decimals rounded; each float within
    RELATIVE_TOLERANCE of the larger of the two, or of 1 for values below 1 (near zero a value is the difference
    of larger numbers: an expected profit of 0.01 from an uplift times a margin less a contact's cost); each
    decimal within one unit of its last place."""
    order = ", ".join([f'"{column}"' for column in exact] + [f'round("{column}", 6)' for column in floats])
    numbered = "select *, row_number() over (order by {order}) as pair from {catalog}.{schema}.{name}"

    def difference(column: str, data_type: str) -> str:
        scale = _scale(data_type)
        if scale is not None:  # in units of the last place
            return f'max(abs(l."{column}" - r."{column}") * {10**scale})'
        return f'max(abs(l."{column}" - r."{column}") / greatest(abs(l."{column}"), abs(r."{column}"), 1.0))'

    worst = ", ".join(
        f"{difference(column, data_type)}, "
        f'count(*) filter (where (l."{column}" is null) != (r."{column}" is null) '
        f'or isnan(l."{column}"::double) != isnan(r."{column}"::double))'
        for column, data_type in floats.items()
    )
    row = connection.execute(
        f"with l as ({numbered.format(order=order, catalog='expected', schema=schema, name=name)}), "
        f"r as ({numbered.format(order=order, catalog='actual', schema=schema, name=name)}) "
        f"select {worst} from l inner join r using (pair)"
    ).fetchone()
    problems = []
    for index, (column, data_type) in enumerate(floats.items()):
        worst_difference, nulls = row[2 * index], row[2 * index + 1]
        tolerance = 1 if _scale(data_type) is not None else RELATIVE_TOLERANCE
        if nulls:
            problems.append(f"{schema}.{name}.{column}: null or NaN in one file only ({nulls} rows)")
        elif worst_difference is not None and worst_difference > tolerance:
            problems.append(
                f"{schema}.{name}.{column}: difference {worst_difference:.3g} (tolerance {tolerance})"
            )
    return problems


def clv_parameters(serving: Path) -> dict[tuple[str, str], dict[str, float]]:
    with duckdb.connect(str(serving), read_only=True) as connection:
        rows = connection.execute("select fit_kind, model, parameters from marts.clv_model_fits").fetchall()
    return {(kind, model): json.loads(parameters) for kind, model, parameters in rows}


def assert_engines_agree(raw: Path, tmp_path: Path) -> tuple[Path, Path, str]:
    duckdb_summary = run(raw, tmp_path / "duckdb", "duckdb")
    spark_summary = run(raw, tmp_path / "spark", "spark")
    assert "engine        duckdb" in duckdb_summary
    assert "engine        spark (local[2]" in spark_summary
    expected, actual = tmp_path / "duckdb" / "serving.duckdb", tmp_path / "spark" / "serving.duckdb"
    assert differences(expected, actual) == []
    fitted, refitted = clv_parameters(expected), clv_parameters(actual)
    assert fitted.keys() == refitted.keys() and fitted
    for fit, parameters in fitted.items():
        for parameter, value in parameters.items():
            assert refitted[fit][parameter] == pytest.approx(value, rel=1e-6), (fit, parameter)
    return expected, actual, spark_summary


def test_the_sample_builds_the_same_on_spark_and_a_lost_spark_folder_keeps_the_ids_and_history(tmp_path):
    raw = tmp_path / "raw"
    shutil.copytree(REPOSITORY / "data" / "raw", raw)
    _, actual, _ = assert_engines_agree(raw, tmp_path)
    with duckdb.connect(str(actual), read_only=True) as connection:
        ids = connection.execute("select * from marts.customer_id_map order by all").fetchall()
    assert len(ids) > 5000
    # Spark's own tables lost (a new machine, an erasure): the next run rebuilds them from the warehouse file,
    # the never-rebuilt ledger and histories restored from it. Run at an earlier as_of: the history keeps the
    # first run's snapshot beside the new one, and the ledger issues the same ids.
    shutil.rmtree(tmp_path / "spark" / "spark")
    run(raw, tmp_path / "spark", "spark", as_of="2025-09-30")
    with duckdb.connect(str(actual), read_only=True) as connection:
        assert connection.execute("select * from marts.customer_id_map order by all").fetchall() == ids
        for history in ("customer_rfmt_history", "customer_value_history"):
            snapshots = connection.execute(f"select distinct as_of::varchar from marts.{history} order by 1")
            assert [row[0] for row in snapshots.fetchall()] == ["2025-09-30", "2025-12-30"], history


def add_identity_chain(raw: Path, records: int) -> list[str]:
    """A person behind `records` CRM records, each linked only to the next, by e-mail and loyalty card in
    turn (each record shares its e-mail with one neighbour and its card with the other; distinct names, no
    birth date or address, so nothing else links them): one identity component whose diameter is `records`
    - 1 links. Returns their source ids."""
    generator = random.Random(5)
    ids = [f"chain{number:04d}" for number in range(records)]
    with (raw / "customers" / "crm" / "chain.csv").open("w") as chain:
        chain.write('"source_customer_id","full_name","document_id","email","phone","birth_date","city","state",'
                    '"postal_code","address","loyalty_id","created_at","updated_at"\n')  # fmt: skip
        for number, source_id in enumerate(ids):
            name = " ".join(
                generator.choice("BCDFGKLMNPRSTVZ") + generator.choice("aeiou") * 2 + "x" for _ in "12"
            )
            email = f"chain.link{(number + 1) // 2}@example.org"
            card = f"99{number // 2:06d}"
            chain.write(
                f'"{source_id}","{name}",,"{email}",,,,,,,"{card}",2024-01-02 10:00:00,2024-01-02 10:00:00\n'
            )
    return ids


def test_a_generated_20000_person_dataset_builds_the_same_on_spark(tmp_path):
    """With a chain of 120 records: 10 rounds of label propagation would not join it, nor a depth-limited
    search; both engines must find one customer."""
    from dagster_project.synthetic import generate

    generate(20_000, seed=11, out=tmp_path / "generated")
    chain = add_identity_chain(tmp_path / "generated" / "raw", 120)
    expected, actual, _ = assert_engines_agree(tmp_path / "generated" / "raw", tmp_path)
    for serving in (expected, actual):
        with duckdb.connect(str(serving), read_only=True) as connection:
            customers = connection.execute(
                "select count(*), count(distinct customer_id) from marts.customer_id_map "
                "where source_system = 'crm' and source_customer_id in (select unnest($ids))",
                {"ids": chain},
            ).fetchone()
        assert customers == (120, 1), serving


@pytest.fixture(scope="module")
def local_spark(tmp_path_factory: pytest.TempPathFactory) -> spark.Engine:
    """A Spark Connect server in the test's process (one per process: Spark allows one driver), standing for a
    cluster's where a test needs one."""
    folder = tmp_path_factory.mktemp("local_spark")
    return spark.engine(Settings.load({"warehouse": str(folder / "w.duckdb")}, environ={}))


def test_an_erasure_on_a_cluster_drops_the_projects_tables_there(local_spark, tmp_path):
    """C360_SPARK_REMOTE: the run uses a cluster's Spark, whose tables this process cannot delete as files.
    After an erasure the person is in none of the project's tables there - the never-rebuilt history would
    otherwise be pulled back into the warehouse file and the serving file - and another table of the cluster's
    catalog is untouched."""
    from tests.test_erasure import the_person

    session = local_spark.session
    session.sql("create database if not exists marts")
    session.sql("create table if not exists marts.someone_elses using parquet as select 1 as kept")
    remote = f"{local_spark.remote}/;token={local_spark.token}"
    raw, folder = tmp_path / "raw", tmp_path / "run"
    shutil.copytree(REPOSITORY / "data" / "raw", raw)
    run(raw, folder, "spark", spark_remote=remote)
    assert not (folder / "spark" / "tables").exists()  # no server of its own
    with duckdb.connect(str(folder / "warehouse.duckdb"), read_only=True) as connection:
        customer_id, email = the_person(connection)
    tables = ["marts.customer_rfmt_history", "marts.customer_value_history", "marts.customer_360"]

    def rows_of_the_person_on_the_cluster() -> dict[str, int]:
        for table in tables:  # rewritten by the runs' sessions: this one's cached file listing is stale
            session.catalog.refreshTable(table)
        return {
            table: session.sql(f"select count(*) from {table} where customer_id = {customer_id}").collect()[
                0
            ][0]
            for table in tables
        }

    assert all(rows_of_the_person_on_the_cluster().values())
    requests = raw / "erasure_requests" / "dpo"
    requests.mkdir(parents=True)
    (requests / "requests_2026-01-05.csv").write_text(
        f"request_id,email,requested_at,legal_basis\nLGPD-0001,{email},2026-01-05 09:30:00,LGPD Art. 18 VI\n"
    )
    run(raw, folder, "spark", spark_remote=remote)
    assert rows_of_the_person_on_the_cluster() == dict.fromkeys(tables, 0)
    with duckdb.connect(str(folder / "serving.duckdb"), read_only=True) as connection:
        for table in tables:
            assert connection.execute(
                f"select count(*) from {table} where customer_id = {customer_id}"
            ).fetchone() == (0,)
        assert connection.execute("select count(*) from marts.customer_360").fetchone()[0] > 1000
    assert session.sql("select kept from marts.someone_elses").collect()[0][0] == 1


def test_jaro_winkler_on_spark_equals_duckdbs(local_spark):
    """The inline Jaro-Winkler of dbt/macros/portable.sql (Spark has none) against DuckDB's function."""
    macro = (DBT_PROJECT_DIR / "macros" / "portable.sql").read_text()
    body = re.search(r"macro spark__jaro_winkler\(a, b\) -%}(.+?){%- endmacro", macro, re.S).group(1)
    expression = body.replace("{{ a }}", "a").replace("{{ b }}", "b")
    names = ["maria", "mariana", "marta", "joao", "joana", "silva", "silveira", "souza", "sousa", "oliveira"]
    names += [
        "olivera",
        "fernanda",
        "fernando",
        "luiz",
        "luis",
        "dwayne",
        "duane",
        "dixon",
        "dicksonx",
        "a",
        "ab",
    ]
    generator = random.Random(3)
    words = ["".join(generator.choice("abcde") for _ in range(generator.randint(1, 9))) for _ in range(120)]
    pairs = [(a, b) for a in names + words[:20] for b in names + words[20:40]]
    with duckdb.connect() as connection:
        expected = dict(
            ((a, b), score)
            for a, b, score in connection.execute(
                "select a, b, jaro_winkler_similarity(a, b) from (select unnest($a) as a, unnest($b) as b)",
                {"a": [a for a, _ in pairs], "b": [b for _, b in pairs]},
            ).fetchall()
        )
    frame = local_spark.session.createDataFrame(pairs, "a string, b string")
    frame.createOrReplaceTempView("pairs")
    actual = {
        (a, b): score
        for a, b, score in local_spark.session.sql(f"select a, b, {expression} from pairs").collect()
    }
    assert len(actual) == len(expected) > 1500
    assert all(actual[pair] == pytest.approx(score, abs=1e-12) for pair, score in expected.items())
