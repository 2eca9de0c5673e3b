"""The project documents itself: its design in docs/, every mart and segment column described in dbt's YAML,
and nothing pointing outside the repository."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from dagster_project.defs.resources import DBT_PROJECT_DIR
from dagster_project.paths import ROOT

PROJECT = ROOT


def tracked_files() -> list[Path]:
    names = subprocess.run(
        ["git", "ls-files"], cwd=PROJECT, capture_output=True, text=True, check=True
    ).stdout
    return [PROJECT / name for name in names.splitlines() if (PROJECT / name).is_file()]


def test_nothing_in_the_repository_points_outside_it():
    pointing_out = [
        str(path.relative_to(PROJECT))
        for path in tracked_files()
        if path.suffix in {".py", ".sql", ".yml", ".yaml", ".json", ".md", ".ipynb", ".toml", ".csv", ""}
        and path.name != "test_docs.py"
        and re.search(r"\.\./shared|DESIGN\.md|DESIGN §", path.read_text(encoding="utf-8", errors="replace"))
    ]
    assert pointing_out == []


def test_the_readme_and_docs_links_resolve():
    for page in [PROJECT / "README.md", *sorted((PROJECT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", page.read_text(encoding="utf-8")):
            assert (page.parent / target).exists(), f"{page.name} links to {target}"
    assert {"architecture.md", "contracts.md", "identity.md", "metrics.md", "delivery.md"} <= {
        path.name for path in (PROJECT / "docs").glob("*.md")
    }


def test_every_mart_and_segment_column_is_described():
    manifest = json.loads((DBT_PROJECT_DIR / "target" / "manifest.json").read_text())
    entries = [
        node
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model" and node["schema"] in ("marts", "segments")
    ] + [source for source in manifest["sources"].values() if source["schema"] == "marts"]
    undescribed = [
        f"{entry['schema']}.{entry['name']}.{column}"
        for entry in entries
        for column, spec in entry["columns"].items()
        if not spec.get("description", "").strip()
    ]
    assert len(entries) > 20 and undescribed == []
    assert all(entry.get("description", "").strip() for entry in entries)
    assert all(entry["columns"] for entry in entries)  # listed, not only the key
