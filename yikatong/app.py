"""The application factory: API, pages, static files, error handlers, request plumbing."""

from __future__ import annotations

import logging
import re
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from fastapi import FastAPI, Request, Response
from fastapi.openapi.utils import get_openapi
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import yikatong.models  # noqa: F401 - every table and event handler registered
from yikatong import __version__, problems
from yikatong.api import api_router
from yikatong.crypto.keystore import get_keyring, resolve_secret_key
from yikatong.crypto.masking import SensitiveDataFilter
from yikatong.deps import CSRF_COOKIE, csrf_token_for, new_csrf_nonce
from yikatong.errors import InvalidCharacters
from yikatong.settings import get_settings

STATIC_DIR = Path(__file__).parent / "web" / "static"
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{8,64}$")
_CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; "
    "frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)


def configure_logging() -> None:
    settings = get_settings()
    root = logging.getLogger()
    if not any(isinstance(f, SensitiveDataFilter) for h in root.handlers for f in h.filters):
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
        handler.addFilter(SensitiveDataFilter())
        root.addHandler(handler)
    root.setLevel(settings.log_level)
    for name in ("uvicorn.access", "uvicorn.error"):
        for h in logging.getLogger(name).handlers:
            h.addFilter(SensitiveDataFilter())


class RequestPlumbing:
    """Request id, CSRF nonce cookie and security headers for every response.

    A plain ASGI middleware rather than ``@app.middleware("http")``: Starlette's
    ``BaseHTTPMiddleware`` runs the rest of the app in a separate task and streams the body
    through memory channels, which cost more than a whole terminal verification. This wraps
    ``send`` and edits the response's start message in place.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        incoming = request.headers.get("x-request-id", "")
        request_id = incoming if _REQUEST_ID_RE.match(incoming) else uuid.uuid4().hex
        nonce = request.cookies.get(CSRF_COOKIE)
        new_nonce = None
        if not nonce:
            new_nonce = nonce = new_csrf_nonce()
        state = request.state
        state.request_id = request_id
        state.csrf_token = csrf_token_for(nonce)
        state.principal = None
        path = scope["path"]
        private = path.startswith(("/staff", "/api/"))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                if new_nonce and not any(
                    value.startswith(CSRF_COOKIE + "=") for value in headers.getlist("set-cookie")
                ):
                    headers.append("set-cookie", _csrf_cookie(new_nonce))
                headers["X-Request-ID"] = request_id
                for name, value in SECURITY_HEADERS:
                    if name not in headers:
                        headers[name] = value
                if private and "cache-control" not in headers:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        query = scope.get("query_string", b"").decode("latin-1")
        if _CONTROL_CHARACTERS.search(unquote(path + "?" + query)):
            # No field holds a NUL or control character; PostgreSQL refuses NUL in text outright.
            response = await problems.on_domain_error(request, InvalidCharacters())
            await response(scope, receive, send_with_headers)
            return
        await self.app(scope, receive, send_with_headers)


SECURITY_HEADERS = (
    ("Content-Security-Policy", CONTENT_SECURITY_POLICY),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "same-origin"),
    ("X-Frame-Options", "DENY"),
)


def _csrf_cookie(nonce: str) -> str:
    """The Set-Cookie value of a new CSRF nonce (HttpOnly: pages carry the derived token)."""
    response = Response()
    response.set_cookie(
        CSRF_COOKIE,
        nonce,
        httponly=True,
        samesite="lax",
        secure=get_settings().secure_cookies,
        path="/",
    )
    return response.headers["set-cookie"]


def create_app() -> FastAPI:
    settings = get_settings()
    configure_logging()
    # Fail at start-up, not on the first request, when keys or secrets are missing.
    get_keyring()
    resolve_secret_key(settings)

    app = FastAPI(
        title="yikatong — 社会保障卡居民服务一卡通",
        version=__version__,
        description=(
            "API of the social security card one-card platform. Errors are RFC 9457 problem "
            "details (`application/problem+json`) with a stable `code`; each code is "
            "documented at `/problems/{code}`."
        ),
        openapi_url="/api/v1/openapi.json",
        docs_url=None,  # Swagger UI would load assets from a CDN; the platform runs offline
        redoc_url=None,
    )
    problems.install(app)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = problems.declare_problem_media_type(
                get_openapi(
                    title=app.title,
                    version=app.version,
                    description=app.description,
                    routes=app.routes,
                )
            )
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.add_middleware(RequestPlumbing)
    app.include_router(api_router)

    from yikatong.web.routes import web_router

    app.include_router(web_router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
