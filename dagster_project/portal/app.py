"""The download page (make portal; docs/privacy.md): marketers log in and download the segment files they may
take, from the deliveries whose gates passed; every login, logout and download is appended to the audit log.

Sessions live in the server's memory (a restart logs everyone out) behind an HttpOnly, SameSite=Strict cookie
(Secure when served over https), expire after IDLE_TIMEOUT idle, and are replaced at login. Every form carries
the session's CSRF token. A file is looked up in the manifests (portal/catalog.py), never found by a path from
the request, and is sent only if its sha256 is still the manifest's.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from dagster_project.lib.settings import Settings
from dagster_project.portal import catalog
from dagster_project.portal.texts import LANGUAGES, TEXTS, language_of
from dagster_project.portal.users import NAME_PATTERN, LoginRefused, UserStore

SESSION_COOKIE = "c360_session"
LANGUAGE_COOKIE = "c360_lang"
IDLE_TIMEOUT = timedelta(minutes=30)
HERE = Path(__file__).parent
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'; base-uri 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


@dataclass
class Session:
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    user: str | None = None
    segments: tuple[str, ...] = ()
    seen_at: datetime = field(default_factory=lambda: datetime.now(UTC))


class Sessions:
    def __init__(self) -> None:
        self._sessions: dict[str, Session] = {}
        self._lock = threading.Lock()

    def new(self, session: Session) -> str:
        """Keep `session` under a new token; sessions idle too long are forgotten first (a visitor who never logs
        in holds one too)."""
        token = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        with self._lock:
            for idle in [key for key, kept in self._sessions.items() if now - kept.seen_at > IDLE_TIMEOUT]:
                del self._sessions[idle]
            self._sessions[token] = session
        return token

    def get(self, token: str | None) -> Session | None:
        """The session of `token` if it has not been idle too long (then it is forgotten)."""
        now = datetime.now(UTC)
        with self._lock:
            session = self._sessions.get(token or "")
            if session is None:
                return None
            if now - session.seen_at > IDLE_TIMEOUT:
                del self._sessions[token or ""]
                return None
            session.seen_at = now
            return session

    def drop(self, token: str | None) -> None:
        with self._lock:
            self._sessions.pop(token or "", None)


class AuditLog:
    """One JSON line per login, logout and download (who, when, which file, its sha256 and rows; never its
    contents), appended and flushed to disk before the response leaves."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def append(self, event: str, request: Request, **details: Any) -> None:
        record = {
            "at": datetime.now(UTC).isoformat(timespec="seconds"),
            "event": event,
            "client": request.client.host if request.client else None,
            **details,
        }
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._lock, self.path.open("a", encoding="utf-8") as log:
            log.write(json.dumps(record, ensure_ascii=False) + "\n")
            log.flush()


def create_app(settings: Settings) -> FastAPI:
    users = UserStore(settings.portal_users)
    audit = AuditLog(settings.portal_audit_log)
    sessions = Sessions()
    templates = Jinja2Templates(directory=HERE / "templates")
    app = FastAPI(title="customer360 downloads", docs_url=None, redoc_url=None, openapi_url=None)

    @app.middleware("http")
    async def security_headers(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    def page(
        request: Request, template: str, session: Session, status_code: int = 200, **context: Any
    ) -> HTMLResponse:
        language = language_of(request.cookies.get(LANGUAGE_COOKIE), request.headers.get("accept-language"))
        return templates.TemplateResponse(
            request,
            template,
            {"t": TEXTS[language], "language": language, "session": session, **context},
            status_code=status_code,
        )

    def with_session(response: Response, request: Request, token: str) -> Response:
        response.set_cookie(
            SESSION_COOKIE,
            token,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )
        return response

    def anonymous(request: Request) -> tuple[str, Session]:
        """The visitor's session (a new one, without a user, if they have none)."""
        token = request.cookies.get(SESSION_COOKIE)
        session = sessions.get(token)
        if session is None or token is None:
            session = Session()
            token = sessions.new(session)
        return token, session

    def refused(request: Request, session: Session, message: str, status_code: int) -> HTMLResponse:
        return page(request, "message.html", session, status_code, message=message)

    @app.get("/portal.css")
    def stylesheet() -> Response:
        return Response(
            (HERE / "templates" / "portal.css").read_text(encoding="utf-8"), media_type="text/css"
        )

    @app.get("/language/{language}")
    def choose_language(language: str) -> Response:
        response = RedirectResponse("/", status_code=303)
        if language in LANGUAGES:
            response.set_cookie(LANGUAGE_COOKIE, language, httponly=True, samesite="strict", path="/")
        return response

    @app.get("/login", response_class=HTMLResponse)
    def login_page(request: Request) -> Response:
        token, session = anonymous(request)
        return with_session(page(request, "login.html", session), request, token)

    @app.post("/login", response_class=HTMLResponse)
    def log_in(
        request: Request, name: str = Form(""), password: str = Form(""), csrf: str = Form("")
    ) -> Response:
        token, session = anonymous(request)
        if not secrets.compare_digest(csrf, session.csrf):
            return with_session(
                refused(request, session, texts_for(request)["bad_form"], 400), request, token
            )
        shown_name = name if re.fullmatch(NAME_PATTERN, name) else "(not a user name)"
        try:
            user = users.log_in(name, password)
        except LoginRefused as refusal:
            audit.append("login_refused", request, user=shown_name, reason=str(refusal))
            message = texts_for(request)["locked" if refusal.locked else "refused"]
            response = page(request, "login.html", session, 401, error=message)
            return with_session(response, request, token)
        sessions.drop(token)  # a new session at login: a token seen before it is worth nothing after
        token = sessions.new(Session(user=name, segments=tuple(user.segments)))
        audit.append("login", request, user=name)
        return with_session(RedirectResponse("/", status_code=303), request, token)

    @app.post("/logout")
    def log_out(request: Request, csrf: str = Form("")) -> Response:
        token = request.cookies.get(SESSION_COOKIE)
        session = sessions.get(token)
        if session is not None and session.user and secrets.compare_digest(csrf, session.csrf):
            audit.append("logout", request, user=session.user)
            sessions.drop(token)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(SESSION_COOKIE, path="/")
        return response

    @app.get("/", response_class=HTMLResponse)
    def files(request: Request) -> Response:
        session = sessions.get(request.cookies.get(SESSION_COOKIE))
        if session is None or session.user is None:
            return RedirectResponse("/login", status_code=303)
        allowed = [
            (delivery, [entry for entry in delivery.entries if entry["name"] in session.segments])
            for delivery in catalog.deliveries(settings.export_dir)
        ]
        return page(request, "files.html", session, deliveries=[item for item in allowed if item[1]])

    @app.get("/download/{as_of}/{file_name}")
    def download(request: Request, as_of: str, file_name: str) -> Response:
        session = sessions.get(request.cookies.get(SESSION_COOKIE))
        texts = texts_for(request)
        wanted = f"{as_of}/{file_name}"[:200]
        if session is None or session.user is None:
            audit.append("download_refused", request, user=None, file=wanted, reason="not logged in")
            anonymous_session = Session()
            return refused(request, anonymous_session, texts["expired"], 401)
        found = catalog.find(settings.export_dir, as_of, file_name)
        if found is None:
            audit.append("download_refused", request, user=session.user, file=wanted, reason="not listed")
            return refused(request, session, texts["not_found"], 404)
        entry, path = found
        if entry["name"] not in session.segments:
            audit.append("download_refused", request, user=session.user, file=wanted, reason="not allowed")
            return refused(request, session, texts["forbidden"], 403)
        content = catalog.read_checked(path, entry)
        if content is None:
            audit.append(
                "download_refused", request, user=session.user, file=wanted, reason="checksum changed"
            )
            return refused(request, session, texts["changed"], 409)
        audit.append(
            "download", request, user=session.user, file=wanted, sha256=entry["sha256"], rows=entry["rows"]
        )
        return Response(
            content,
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{as_of}_{entry["file"]}"'},
        )

    def texts_for(request: Request) -> dict[str, str]:
        return TEXTS[
            language_of(request.cookies.get(LANGUAGE_COOKIE), request.headers.get("accept-language"))
        ]

    return app
