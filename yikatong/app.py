"""The application factory: API, pages, static files, error handlers, request plumbing."""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from fastapi import FastAPI, Request, Response
from fastapi.openapi.utils import get_openapi
from fastapi.staticfiles import StaticFiles

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


async def request_plumbing(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    """Request id, CSRF nonce cookie and security headers for every response."""
    incoming = request.headers.get("x-request-id", "")
    request.state.request_id = incoming if _REQUEST_ID_RE.match(incoming) else uuid.uuid4().hex
    nonce = request.cookies.get(CSRF_COOKIE)
    new_nonce = None
    if not nonce:
        new_nonce = nonce = new_csrf_nonce()
    request.state.csrf_token = csrf_token_for(nonce)
    request.state.principal = None
    if _CONTROL_CHARACTERS.search(unquote(request.url.path + "?" + request.url.query)):
        # No field holds a NUL or control character; PostgreSQL refuses NUL in text outright.
        response = await problems.on_domain_error(request, InvalidCharacters())
    else:
        response = await call_next(request)
    if new_nonce and not any(
        h.startswith(CSRF_COOKIE + "=") for h in response.headers.getlist("set-cookie")
    ):
        response.set_cookie(
            CSRF_COOKIE,
            new_nonce,
            httponly=True,
            samesite="lax",
            secure=get_settings().secure_cookies,
            path="/",
        )
    response.headers["X-Request-ID"] = request.state.request_id
    response.headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    response.headers.setdefault("Referrer-Policy", "same-origin")
    response.headers.setdefault("X-Frame-Options", "DENY")
    if request.url.path.startswith(("/staff", "/api/")):
        response.headers.setdefault("Cache-Control", "no-store")
    return response


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
    app.middleware("http")(request_plumbing)
    app.include_router(api_router)

    from yikatong.web.routes import web_router

    app.include_router(web_router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
