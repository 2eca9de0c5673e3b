"""The download page (dagster_project/portal, make portal): a real uvicorn server on the exports of a real run,
driven by Debian's Chromium through Playwright, and by plain HTTP for what a browser would not send."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from playwright.sync_api import sync_playwright

from dagster_project.paths import ROOT

CHROMIUM = "/usr/bin/chromium"
PASSWORD = "correct horse battery staple"
ALLOWED = "champions_loyalty_email"
REFUSED = "service_desk_next_contact"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def portal_command(
    environment: dict[str, str], *arguments: str, stdin: str = ""
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "dagster_project.portal", *arguments],
        input=stdin,
        capture_output=True,
        text=True,
        env=environment,
        cwd=ROOT,
        check=False,
    )


@pytest.fixture(scope="module")
def portal(built_sample, tmp_path_factory) -> Iterator[dict]:
    """The page served on a free port of 127.0.0.1 over the built sample's exports, with user ana (one segment)."""
    folder = tmp_path_factory.mktemp("portal")
    environment = {
        **os.environ,
        "C360_EXPORT_DIR": str(built_sample[0] / "exports"),
        "C360_PORTAL_USERS": str(folder / "users.json"),
        "C360_PORTAL_AUDIT_LOG": str(folder / "audit.jsonl"),
        "C360_PORTAL_PORT": str(free_port()),
    }
    added = portal_command(
        environment, "add-user", "ana", "--segments", ALLOWED, "--password-stdin", stdin=PASSWORD
    )
    assert added.returncode == 0, added.stderr
    server = subprocess.Popen(
        [sys.executable, "-m", "dagster_project.portal", "serve"],
        env=environment,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    url = f"http://127.0.0.1:{environment['C360_PORTAL_PORT']}"
    for _ in range(200):
        try:
            requests.get(url + "/login", timeout=1)
            break
        except requests.ConnectionError:
            time.sleep(0.1)
    try:
        yield {
            "url": url,
            "environment": environment,
            "folder": folder,
            "exports": built_sample[0] / "exports",
        }
    finally:
        server.terminate()
        server.wait(timeout=10)


def audit(portal: dict) -> list[dict]:
    path = Path(portal["environment"]["C360_PORTAL_AUDIT_LOG"])
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_a_marketer_downloads_what_they_may_in_a_browser_and_nothing_else(portal, tmp_path):
    (export,) = [path for path in portal["exports"].iterdir() if path.name[:2] == "20"]
    allowed_file = export / f"{ALLOWED}.csv"
    screenshots = tmp_path / "screenshots"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        page = browser.new_context(accept_downloads=True, locale="pt-BR").new_page()
        page.goto(portal["url"] + "/")
        assert page.url.endswith("/login") and page.locator("h2").inner_text() == "Entrar"
        page.fill("#name", "ana")
        page.fill("#password", "not the password")
        page.click("#submit")
        assert "Usuário ou senha incorretos." in page.locator(".error").inner_text()
        page.click("#language")  # English
        assert page.locator("h2").inner_text() == "Log in"
        page.fill("#name", "ana")
        page.fill("#password", PASSWORD)
        page.click("#submit")
        page.wait_for_selector("#user")
        assert page.locator("#user").inner_text() == "ana"
        rows = page.locator("tbody tr").all_inner_texts()
        assert len(rows) == 1 and rows[0].startswith(ALLOWED)  # the other segments are not even listed
        manifest = json.loads((export / "manifest.json").read_text(encoding="utf-8"))
        (entry,) = [entry for entry in manifest["segments"] if entry["name"] == ALLOWED]
        assert f"{entry['rows']:,}" in rows[0] and entry["sha256"][:16] in rows[0]
        screenshots.mkdir()
        page.screenshot(path=str(screenshots / "files.png"), full_page=True)

        with page.expect_download() as download:
            page.click("a.download")
        assert Path(download.value.path()).read_bytes() == allowed_file.read_bytes()
        assert download.value.suggested_filename == f"{export.name}_{ALLOWED}.csv"

        refused = page.goto(f"{portal['url']}/download/{export.name}/{REFUSED}.csv")
        assert refused.status == 403 and "You may not download this file." in page.content()
        page.goto(portal["url"] + "/")
        page.click("#logout")
        assert page.url.endswith("/login")
        after_logout = page.goto(f"{portal['url']}/download/{export.name}/{ALLOWED}.csv")
        assert after_logout.status == 401
        browser.close()
    assert (screenshots / "files.png").stat().st_size > 10_000
    events = [(event["event"], event.get("user"), event.get("reason")) for event in audit(portal)]
    assert events[-6:] == [
        ("login_refused", "ana", "wrong name or password"),
        ("login", "ana", None),
        ("download", "ana", None),
        ("download_refused", "ana", "not allowed"),
        ("logout", "ana", None),
        ("download_refused", None, "not logged in"),
    ]
    (download_event,) = [event for event in audit(portal) if event["event"] == "download"]
    assert download_event["file"] == f"{export.name}/{ALLOWED}.csv"
    assert (download_event["sha256"], download_event["rows"]) == (entry["sha256"], entry["rows"])


def test_the_page_refuses_forged_forms_paths_outside_the_manifests_and_locks_after_failed_logins(portal):
    url = portal["url"]
    (export,) = [path for path in portal["exports"].iterdir() if path.name[:2] == "20"]
    browser = requests.Session()
    page = browser.get(url + "/login")
    cookie = page.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    csrf = page.text.split('name="csrf" value="')[1].split('"')[0]
    forged = browser.post(url + "/login", data={"name": "ana", "password": PASSWORD, "csrf": "forged"})
    assert forged.status_code == 400
    logged_in = browser.post(url + "/login", data={"name": "ana", "password": PASSWORD, "csrf": csrf})
    assert logged_in.status_code == 200 and "ana" in logged_in.text
    for path in (
        f"/download/{export.name}/..%2Fmanifest.json",
        f"/download/{export.name}/manifest.json",
        "/download/..%2F..%2F..%2Fetc/passwd",
        f"/download/{export.name}/%2E%2E%2F%2E%2E%2Fusers.json",
        f"/download/../{export.name}/{ALLOWED}.csv",
    ):
        answer = browser.get(url + path, allow_redirects=False)
        assert answer.status_code in (404, 405) and "root:" not in answer.text, path
    # A file changed after its delivery is not sent.
    original = (export / f"{ALLOWED}.csv").read_bytes()
    try:
        (export / f"{ALLOWED}.csv").write_bytes(original + b"1;tampered\r\n")
        assert browser.get(f"{url}/download/{export.name}/{ALLOWED}.csv").status_code == 409
    finally:
        (export / f"{ALLOWED}.csv").write_bytes(original)
    assert browser.get(f"{url}/download/{export.name}/{ALLOWED}.csv").content == original

    # Five wrong passwords lock the account: the right one is then refused too, until it is unlocked.
    other = requests.Session()
    for _ in range(5):
        csrf = other.get(url + "/login").text.split('name="csrf" value="')[1].split('"')[0]
        assert (
            other.post(url + "/login", data={"name": "ana", "password": "guess", "csrf": csrf}).status_code
            == 401
        )
    csrf = other.get(url + "/login").text.split('name="csrf" value="')[1].split('"')[0]
    locked = other.post(url + "/login", data={"name": "ana", "password": PASSWORD, "csrf": csrf})
    assert locked.status_code == 401 and "Conta bloqueada" in locked.text
    assert json.loads(Path(portal["environment"]["C360_PORTAL_USERS"]).read_text())["users"]["ana"][
        "locked_until"
    ]
    assert portal_command(portal["environment"], "unlock", "ana").returncode == 0
    csrf = other.get(url + "/login").text.split('name="csrf" value="')[1].split('"')[0]
    assert (
        other.post(url + "/login", data={"name": "ana", "password": PASSWORD, "csrf": csrf}).status_code
        == 200
    )
    users = Path(portal["environment"]["C360_PORTAL_USERS"]).read_text()
    assert PASSWORD not in users and "$argon2id$" in users
    assert PASSWORD not in Path(portal["environment"]["C360_PORTAL_AUDIT_LOG"]).read_text()


def test_adding_a_user_checks_the_segments_and_the_password(portal):
    environment = portal["environment"]
    unknown = portal_command(
        environment, "add-user", "rui", "--segments", "no_such", "--password-stdin", stdin=PASSWORD
    )
    assert unknown.returncode == 2 and "unknown segment" in unknown.stderr
    short = portal_command(
        environment, "add-user", "rui", "--segments", ALLOWED, "--password-stdin", stdin="short"
    )
    assert short.returncode == 2 and "at least 12" in short.stderr
    assert "rui" not in json.loads(Path(environment["C360_PORTAL_USERS"]).read_text())["users"]
