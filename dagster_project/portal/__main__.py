"""python -m dagster_project.portal: serve the download page, or manage its users.

serve                                              the page on 127.0.0.1:C360_PORTAL_PORT (make portal)
add-user NAME --segments a,b --password-stdin      add a user (or replace their password and segments)
unlock NAME                                        unlock an account locked after failed logins
"""

from __future__ import annotations

import argparse
import re
import sys

from dagster_project.lib.settings import Settings, SettingsError
from dagster_project.portal.users import NAME_PATTERN, UserStore

MIN_PASSWORD_LENGTH = 12


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m dagster_project.portal", description=__doc__.splitlines()[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="serve the download page on 127.0.0.1:C360_PORTAL_PORT")
    add = commands.add_parser("add-user", help="add a user, or replace their password and segments")
    add.add_argument("name")
    add.add_argument("--segments", required=True, help="comma-separated segment names the user may download")
    add.add_argument(
        "--password-stdin", action="store_true", required=True, help="read the password from stdin"
    )
    unlock = commands.add_parser("unlock", help="unlock an account locked after failed logins")
    unlock.add_argument("name")
    arguments = parser.parse_args(argv)
    try:
        settings = Settings.load()
    except SettingsError as error:
        print(error, file=sys.stderr)
        return 2
    users = UserStore(settings.portal_users)
    if arguments.command == "serve":
        import uvicorn

        from dagster_project.portal.app import create_app

        print(
            f"customer360 downloads: http://127.0.0.1:{settings.portal_port}/ (users {settings.portal_users})"
        )
        uvicorn.run(create_app(settings), host="127.0.0.1", port=settings.portal_port, log_level="warning")
        return 0
    if not re.fullmatch(NAME_PATTERN, arguments.name):
        print(f"a user name is 1 to 64 of A-Z a-z 0-9 . _ @ -: {arguments.name!r} is not", file=sys.stderr)
        return 2
    if arguments.command == "unlock":
        try:
            users.unlock(arguments.name)
        except KeyError:
            print(f"no user {arguments.name} in {settings.portal_users}", file=sys.stderr)
            return 1
        print(f"{arguments.name} unlocked")
        return 0
    segments = [name.strip() for name in arguments.segments.split(",") if name.strip()]
    unknown = sorted(set(segments) - set(known_segments()))
    if not segments or unknown:
        print(
            f"unknown segment(s) {unknown or '(none given)'}; known: {', '.join(known_segments())}",
            file=sys.stderr,
        )
        return 2
    password = sys.stdin.readline().rstrip("\r\n")
    if len(password) < MIN_PASSWORD_LENGTH:
        print(f"the password must have at least {MIN_PASSWORD_LENGTH} characters", file=sys.stderr)
        return 2
    users.add(arguments.name, password, segments)
    print(f"{arguments.name} may download {', '.join(segments)} ({settings.portal_users})")
    return 0


def known_segments() -> list[str]:
    """The segments the project exports (dbt's manifest, as `make` parses it)."""
    from dagster_project.lib.exports import consent_channels, segments_from_manifest
    from dagster_project.paths import DBT_PROJECT_DIR

    channels = consent_channels(DBT_PROJECT_DIR / "dbt_project.yml")
    return sorted(
        segment.name
        for segment in segments_from_manifest(DBT_PROJECT_DIR / "target" / "manifest.json", channels)
    )


if __name__ == "__main__":
    sys.exit(main())
