"""SQL functions dbt's DuckDB connection gets (a dbt-duckdb plugin, declared in dbt/profiles.yml).

`normal_cdf(x)`: the standard normal distribution function, from SciPy, for the p-values and intervals of the
campaign measurement (docs/metrics.md). DuckDB has no such function; the marts store the numbers, so readers of
the warehouse or the serving file do not need it.
"""

from __future__ import annotations

import duckdb
from dbt.adapters.duckdb.plugins import BasePlugin
from scipy.special import ndtr


def normal_cdf(x: float) -> float:
    return float(ndtr(x))


def register(connection: duckdb.DuckDBPyConnection) -> None:
    connection.create_function(
        "normal_cdf", normal_cdf, [duckdb.sqltype("DOUBLE")], duckdb.sqltype("DOUBLE"), side_effects=False
    )


class Plugin(BasePlugin):
    def configure_connection(self, conn: duckdb.DuckDBPyConnection) -> None:
        register(conn)
