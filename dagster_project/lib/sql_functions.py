"""SQL functions dbt's DuckDB connection gets (a dbt-duckdb plugin, declared in dbt/profiles.yml).

`normal_cdf(x)`: the standard normal distribution function, for the p-values of the campaign measurement
(docs/metrics.md): 0.5 erfc(-x / sqrt 2) from Python's math library, accurate in the tails too (a test compares
it with SciPy), without loading SciPy into dbt's process. DuckDB has no such function; the marts store the
numbers, so readers of the warehouse or the serving file do not need it.
"""

from __future__ import annotations

import math

import duckdb
from dbt.adapters.duckdb.plugins import BasePlugin


def normal_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2))


def register(connection: duckdb.DuckDBPyConnection) -> None:
    connection.create_function(
        "normal_cdf", normal_cdf, [duckdb.sqltype("DOUBLE")], duckdb.sqltype("DOUBLE"), side_effects=False
    )


class Plugin(BasePlugin):
    def configure_connection(self, conn: duckdb.DuckDBPyConnection) -> None:
        register(conn)
