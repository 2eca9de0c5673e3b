"""The asset graph as a snapshot: every asset with its group and what it depends on, every check with the asset
it judges and whether it blocks. A refactor that moves, renames, regroups or unblocks something shows here as
a diff against tests/snapshots/asset_graph.json; when the change is meant, write the snapshot again with
`C360_UPDATE_SNAPSHOTS=1 make test` (or this file alone) and commit it with the change."""

from __future__ import annotations

import difflib
import json
import os
from pathlib import Path

SNAPSHOT = Path(__file__).parent / "snapshots" / "asset_graph.json"


def asset_graph() -> dict[str, object]:
    from dagster_project.definitions import defs

    graph = defs.resolve_asset_graph()
    assets = {}
    for key in sorted(graph.get_all_asset_keys(), key=lambda key: key.to_user_string()):
        node = graph.get(key)
        assets[key.to_user_string()] = {
            "group": node.group_name,
            "step": node.assets_def.node_def.name if node.is_materializable else None,
            "depends_on": sorted(parent.to_user_string() for parent in node.parent_keys),
        }
    checks = {}
    for check_key in sorted(graph.asset_check_keys, key=lambda key: key.to_user_string()):
        checks[check_key.to_user_string()] = {
            "asset": check_key.asset_key.to_user_string(),
            "blocking": graph.get(check_key).blocking,
        }
    jobs = sorted(job.name for job in defs.jobs or [])
    schedules = sorted(schedule.name for schedule in defs.schedules or [])
    sensors = sorted(sensor.name for sensor in defs.sensors or [])
    return {"assets": assets, "checks": checks, "jobs": jobs, "schedules": schedules, "sensors": sensors}


def test_the_asset_graph_matches_its_snapshot():
    current = json.dumps(asset_graph(), indent=1, sort_keys=True) + "\n"
    if os.environ.get("C360_UPDATE_SNAPSHOTS") == "1":
        SNAPSHOT.parent.mkdir(parents=True, exist_ok=True)
        SNAPSHOT.write_text(current, encoding="utf-8")
    assert SNAPSHOT.exists(), f"no snapshot at {SNAPSHOT}: write it with C360_UPDATE_SNAPSHOTS=1"
    expected = SNAPSHOT.read_text(encoding="utf-8")
    diff = "".join(
        difflib.unified_diff(expected.splitlines(True), current.splitlines(True), "snapshot", "current", n=1)
    )
    assert not diff, (
        "the asset graph changed; if that is meant, run C360_UPDATE_SNAPSHOTS=1 .venv/bin/python -m pytest "
        f"tests/test_asset_graph.py and commit tests/snapshots/asset_graph.json:\n{diff[:6000]}"
    )
    snapshot = json.loads(expected)
    assert len(snapshot["assets"]) > 80 and len(snapshot["checks"]) > 100
