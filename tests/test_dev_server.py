"""`make dev`: the real Dagster webserver loads the code location as a fresh clone's user starts it, with
.venv/bin/dagster and a PATH that does not hold .venv/bin."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from dagster_project.paths import ROOT

PROJECT = ROOT
LOCATION_QUERY = """
{ workspaceOrError { ... on Workspace { locationEntries { name loadStatus
    locationOrLoadError { __typename
        ... on PythonError { message }
        ... on RepositoryLocation { repositories { name assetNodes { assetKey { path } } } } } } } } }
"""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def ask(port: int, query: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_dagster_dev_loads_the_code_location_without_the_venv_on_path(tmp_path: Path) -> None:
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(PROJECT / "dagster_home" / "dagster.yaml", home / "dagster.yaml")
    port = free_port()
    environment = {
        **{name: value for name, value in os.environ.items() if not name.startswith("DAGSTER_")},
        "PATH": "/usr/bin:/bin",  # no .venv/bin: dbt only beside the interpreter, as after `make install`
        "DAGSTER_HOME": str(home),
    }
    dagster = Path(sys.executable).parent / "dagster"
    server = subprocess.Popen(
        [str(dagster), "dev", "-m", "dagster_project.definitions", "-p", str(port), "-h", "127.0.0.1"],
        cwd=PROJECT,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        entry = None
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            assert server.poll() is None, "dagster dev exited"
            try:
                entries = ask(port, LOCATION_QUERY)["data"]["workspaceOrError"]["locationEntries"]
            except OSError:
                entries = []
            if entries and entries[0]["loadStatus"] == "LOADED":
                entry = entries[0]
                break
            time.sleep(2)
        assert entry is not None, "the code location did not load within 240 s"
        location = entry["locationOrLoadError"]
        assert location["__typename"] == "RepositoryLocation", location.get("message")
        keys = {"/".join(node["assetKey"]["path"]) for node in location["repositories"][0]["assetNodes"]}
        # The lineage page is not empty: ingest, the dbt models, CLV, exports and publishing.
        assert {
            "raw/purchases",
            "marts/customer_360",
            "marts/customer_clv",
            "exports/segments",
            "publish/serving",
        } <= keys
        assert len(keys) > 40
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
