"""The download page's users (docs/privacy.md): a JSON file of names, argon2 password hashes, the segments each
may download, and the count of failed logins that locks an account.

The file is rewritten whole and renamed over the old one (never half-written), and holds no password: only its
argon2id hash (argon2-cffi's defaults, RFC 9106's low-memory profile).
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MAX_FAILED_LOGINS = 5  # in a row: then the account is locked
LOCKED_FOR = timedelta(minutes=15)
NAME_PATTERN = r"[A-Za-z0-9._@-]{1,64}"
_hasher = PasswordHasher()
# A hash to verify against when the name is unknown: a login takes as long whether the name exists or not.
_UNKNOWN_USER_HASH = _hasher.hash("not a password anyone has")


@dataclass
class User:
    password_hash: str
    segments: list[str]
    failed_logins: int = 0
    locked_until: str | None = None  # ISO time (UTC)
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    def locked(self, now: datetime) -> bool:
        return self.locked_until is not None and datetime.fromisoformat(self.locked_until) > now


class LoginRefused(Exception):
    """Wrong name or password, or a locked account; `locked` tells which (the page says the same for both)."""

    def __init__(self, locked: bool = False) -> None:
        super().__init__("locked" if locked else "wrong name or password")
        self.locked = locked


class UserStore:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def read(self) -> dict[str, User]:
        if not self.path.exists():
            return {}
        users = json.loads(self.path.read_text(encoding="utf-8")).get("users", {})
        return {name: User(**fields) for name, fields in users.items()}

    def _write(self, users: dict[str, User]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(f".{self.path.name}.partial")
        content = json.dumps(
            {"users": {name: asdict(user) for name, user in sorted(users.items())}}, indent=2
        )
        partial.write_text(content, encoding="utf-8")
        os.chmod(partial, 0o600)
        partial.replace(self.path)

    def add(self, name: str, password: str, segments: list[str]) -> None:
        """Add the user, or replace their password and segments (and unlock them)."""
        with self._lock:
            users = self.read()
            users[name] = User(_hasher.hash(password), sorted(set(segments)))
            self._write(users)

    def unlock(self, name: str) -> None:
        with self._lock:
            users = self.read()
            if name not in users:
                raise KeyError(name)
            users[name].failed_logins, users[name].locked_until = 0, None
            self._write(users)

    def log_in(self, name: str, password: str, now: datetime | None = None) -> User:
        """The user, if the password is theirs and the account is not locked; else LoginRefused. A wrong password
        counts towards the lock; MAX_FAILED_LOGINS in a row lock the account for LOCKED_FOR."""
        now = now or datetime.now(UTC)
        with self._lock:
            users = self.read()
            user = users.get(name)
            if user is None:
                _verify(_UNKNOWN_USER_HASH, password)
                raise LoginRefused()
            if user.locked(now):
                raise LoginRefused(locked=True)
            if not _verify(user.password_hash, password):
                user.failed_logins += 1
                if user.failed_logins >= MAX_FAILED_LOGINS:
                    user.locked_until = (now + LOCKED_FOR).isoformat(timespec="seconds")
                self._write(users)
                raise LoginRefused(locked=user.locked_until is not None and user.locked(now))
            if user.failed_logins or user.locked_until:
                user.failed_logins, user.locked_until = 0, None
                self._write(users)
            return user


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False
