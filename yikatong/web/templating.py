"""The one Jinja environment and :func:`render`, which every HTML page goes through.

``render()`` picks the request's locale, injects what the layouts need (principal, console
navigation, CSRF token, language links) and renders. Translations are installed once as
environment globals that read the locale from a context variable set only while the
template renders, so concurrent requests in other threads or tasks never share a language,
and macros imported without context still translate.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Final, cast
from urllib.parse import quote

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.templating import Jinja2Templates

from yikatong import __version__
from yikatong.web import i18n
from yikatong.web.navigation import Principal, active_nav_key, nav_items_for

TEMPLATES_DIR: Final = Path(__file__).resolve().parent / "templates"
STATIC_DIR: Final = Path(__file__).resolve().parent / "static"
# The app factory mounts StaticFiles(directory=STATIC_DIR) here, with name="static".
STATIC_PREFIX: Final = "/static"


@dataclass(frozen=True, slots=True)
class _RenderState:
    csrf_token: str
    root_path: str


_render_state: ContextVar[_RenderState | None] = ContextVar("yikatong_render", default=None)


@contextmanager
def _rendering(state: _RenderState) -> Iterator[None]:
    token = _render_state.set(state)
    try:
        yield
    finally:
        _render_state.reset(token)


# --- template globals and filters ----------------------------------------------------------


def static_url(path: str) -> str:
    """URL of a file under ``static/``; our own files get ``?v=<version>`` against stale caches.

    Vendored files carry their version in the path already.
    """
    state = _render_state.get()
    root = state.root_path if state else ""
    url = f"{root}{STATIC_PREFIX}/{path.lstrip('/')}"
    if not path.startswith("vendor/"):
        url += f"?v={quote(__version__)}"
    return url


def csrf_token_value() -> str:
    """The CSRF token of the request being rendered ("" outside ``render()``)."""
    state = _render_state.get()
    return state.csrf_token if state else ""


def _datetime_filter(value: datetime | None, fmt: str = i18n.DATETIME_FORMAT) -> str:
    return "" if value is None else i18n.format_datetime(value, fmt)


def _date_filter(value: date | datetime | None, fmt: str = i18n.DATE_FORMAT) -> str:
    return "" if value is None else i18n.format_date(value, fmt)


def _fen_filter(value: int | None) -> str:
    return "" if value is None else i18n.format_fen(value)


def _number_filter(value: int | float | Decimal | None, fmt: str | None = None) -> str:
    return "" if value is None else i18n.format_number(value, fmt)


def _translate_filter(value: object, params: Mapping[str, Any] | None = None) -> str:
    # Plain str on purpose: Jinja escapes it, unlike _() whose result is trusted markup.
    return "" if value is None else i18n.translate_message(str(value), params)


def _make_environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
        autoescape=True,
        extensions=["jinja2.ext.i18n"],
        # Keep these three in step with babel.cfg so extracted msgids match lookups.
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.policies["ext.i18n.trimmed"] = True
    # The i18n extension adds this method at runtime, which type checkers cannot see.
    cast(Any, env).install_gettext_callables(
        gettext=i18n.gettext, ngettext=i18n.ngettext, newstyle=True
    )
    env.filters.update(
        datetime=_datetime_filter,
        date=_date_filter,
        fen=_fen_filter,
        number=_number_filter,
        translate=_translate_filter,
    )
    env.globals.update(
        static_url=static_url,
        csrf_token_value=csrf_token_value,
    )
    return env


templates: Final = Jinja2Templates(env=_make_environment())


# --- render --------------------------------------------------------------------------------


def is_htmx_partial(request: Request) -> bool:
    """True when htmx swaps part of a page, so a fragment is enough.

    Boosted links and history restores replace the whole body and need the full page.
    """
    headers = request.headers
    return (
        headers.get("HX-Request") == "true"
        and headers.get("HX-Boosted") != "true"
        and headers.get("HX-History-Restore-Request") != "true"
    )


def _language_links(request: Request, locale: str) -> list[dict[str, Any]]:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    root = request.scope.get("root_path", "")
    return [
        {
            "code": code,
            "name": i18n.LOCALE_NAMES[code],
            "html_lang": i18n.html_lang(code),
            "url": f"{root}/lang/{code}?next={quote(here, safe='')}",
            "active": code == locale,
        }
        for code in i18n.SUPPORTED_LOCALES
    ]


def base_context(request: Request) -> dict[str, Any]:
    """The names every template can use; :func:`render` adds the caller's context on top."""
    locale = i18n.locale_of(request)
    principal = cast(Principal | None, getattr(request.state, "principal", None))
    nav_items = nav_items_for(principal)
    return {
        "request": request,
        "locale": locale,
        "html_lang": i18n.html_lang(locale),
        "languages": _language_links(request, locale),
        "csrf_token": getattr(request.state, "csrf_token", None) or "",
        "principal": principal,
        "nav_items": nav_items,
        "active_nav": active_nav_key(nav_items, request.url.path),
        "current_path": request.url.path,
        "app_version": __version__,
        "is_htmx": is_htmx_partial(request),
    }


def render(
    request: Request,
    template_name: str,
    context: dict[str, Any] | None = None,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """Render ``template_name`` for ``request`` in the request's language.

    ``context`` is added to (and may override) :func:`base_context`.
    """
    full_context = base_context(request)
    full_context.update(context or {})
    locale: str = full_context["locale"]
    response_headers = dict(headers or {})
    response_headers.setdefault("Content-Language", i18n.html_lang(locale))
    # Full pages and htmx fragments share URLs, and the language comes from a cookie:
    # caches (and the browser's back button) must keep them apart.
    vary = response_headers.get("Vary", "")
    response_headers["Vary"] = ", ".join(v for v in (vary, "Cookie", "HX-Request") if v)
    state = _RenderState(
        csrf_token=full_context["csrf_token"], root_path=request.scope.get("root_path", "")
    )
    with i18n.use_locale(locale), _rendering(state):
        return templates.TemplateResponse(
            request, template_name, full_context, status_code=status_code, headers=response_headers
        )
