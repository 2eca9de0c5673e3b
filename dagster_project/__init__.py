"""customer360: the Dagster code location (definitions.py) and the libraries it runs (lib/)."""

import warnings

# pyspark 4.3 (C360_ENGINE=spark) warns on import that it does not fully support pandas 3; the frames it hands
# over go through Arrow (lib/spark.py), and the warning would open every run's output.
warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
