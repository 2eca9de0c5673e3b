"""The sample-data generator: ``python -m dagster_project.synthetic --customers N --seed S --out DIR``."""

from dagster_project.synthetic.generator import generate

__all__ = ["generate"]
