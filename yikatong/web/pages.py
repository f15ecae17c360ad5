"""Public pages of the web layer: the resident-facing landing page and the language switch."""

from __future__ import annotations

from typing import Final
from urllib.parse import urlsplit

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from yikatong.errors import N_, NotFound
from yikatong.settings import get_settings
from yikatong.web import i18n
from yikatong.web.templating import render

router = APIRouter(include_in_schema=False)

LANGUAGE_COOKIE_MAX_AGE: Final = 365 * 24 * 3600


def safe_local_path(candidate: str | None, default: str = "/") -> str:
    """``candidate`` if it is a path on this site, else ``default`` (no open redirects).

    Rejects absolute and scheme-relative URLs (``//evil.example``), and backslashes and
    control characters, which some browsers turn into ``//``.
    """
    if not candidate or not candidate.startswith("/") or candidate.startswith("//"):
        return default
    if "\\" in candidate or any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in candidate):
        return default
    parts = urlsplit(candidate)
    if parts.scheme or parts.netloc:
        return default
    return candidate


@router.get("/", response_class=HTMLResponse, name="landing")
def landing(request: Request) -> HTMLResponse:
    """The public landing page: what the card does and how to get one."""
    return render(request, "landing.html")


@router.get("/lang/{locale}", name="set_language")
def set_language(
    request: Request,
    locale: str,
    next_path: str = Query("/", alias="next", max_length=2048),
) -> RedirectResponse:
    """Remember the chosen language in a cookie and go back to the page it was chosen on."""
    code = i18n.normalize_locale(locale)
    if code is None:
        raise NotFound(N_("This language is not available."))
    # `next` is the full path the visitor was on (root_path included), so it is used as is.
    response = RedirectResponse(safe_local_path(next_path), status_code=303)
    response.set_cookie(
        i18n.LOCALE_COOKIE,
        code,
        max_age=LANGUAGE_COOKIE_MAX_AGE,
        path="/",
        samesite="lax",
        httponly=True,
        secure=get_settings().secure_cookies,
    )
    return response
