"""Where the project's parts are, from the repository root: the one place that knows the layout."""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DBT_PROJECT_DIR = ROOT / "dbt"
SEEDS_DIR = DBT_PROJECT_DIR / "seeds"
EXPECTATIONS_DIR = ROOT / "expectations"
IDENTITY_MODEL = ROOT / "identity" / "model.json"  # the probabilistic identity model (make train-identity)
