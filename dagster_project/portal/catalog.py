"""What the download page may serve: the segment files listed in the manifest of an export folder that a
delivery wrote after every gate of its run passed (docs/delivery.md). A file is found by looking its folder
and name up in those manifests, never by joining a path from the request: nothing else can be served."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

AS_OF = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class Delivery:
    as_of: str
    created_at: str
    gates_passed: int
    entries: tuple[dict[str, Any], ...]  # the manifest's segment entries


def deliveries(export_dir: Path) -> list[Delivery]:
    """Every export folder whose manifest says its gates passed, newest as_of first."""
    found = []
    for manifest_path in export_dir.glob("*/manifest.json") if export_dir.is_dir() else []:
        folder = manifest_path.parent
        if not AS_OF.fullmatch(folder.name):
            continue  # a folder being written (.<as_of>.partial-…), the validation reports, the erasure reports
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        gates = manifest.get("gates") or {}
        if not gates or not all(gates.values()) or manifest.get("as_of") != folder.name:
            continue
        found.append(
            Delivery(folder.name, manifest.get("created_at", ""), len(gates), tuple(manifest["segments"]))
        )
    return sorted(found, key=lambda delivery: delivery.as_of, reverse=True)


def find(export_dir: Path, as_of: str, file_name: str) -> tuple[dict[str, Any], Path] | None:
    """The manifest entry and path of file `file_name` of delivery `as_of`, if a passed delivery lists it."""
    for delivery in deliveries(export_dir):
        if delivery.as_of != as_of:
            continue
        for entry in delivery.entries:
            if entry["file"] == file_name and "/" not in file_name and "\\" not in file_name:
                return entry, export_dir / delivery.as_of / entry["file"]
    return None


def read_checked(path: Path, entry: dict[str, Any]) -> bytes | None:
    """The file's bytes if their sha256 is the manifest's (else None: the file changed since it was listed)."""
    content = path.read_bytes()
    return content if hashlib.sha256(content).hexdigest() == entry["sha256"] else None
