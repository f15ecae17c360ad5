"""Locales, message catalogues and locale-aware formatting for the HTML pages.

Simplified Chinese is the default; English is the one alternative. Message ids are English
and written in code and templates (``gettext("Apply for a card")``, ``{{ _("...") }}``);
``locales/zh_CN/LC_MESSAGES/messages.po`` holds the Chinese. English needs no catalogue: the
msgid is the text. Compiled ``.mo`` files are not kept in the repository; the ``.po`` is
compiled in memory the first time a locale is used.

The locale of the current request lives in a context variable, set by :func:`use_locale`
(``render()`` does it around template rendering, :class:`LocaleMiddleware` for a whole
request), so :func:`gettext` and :class:`LazyString` work without passing the request
around, and concurrent requests never see each other's language.
"""

from __future__ import annotations

import gettext as _gettext
import os
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import lru_cache
from io import BytesIO
from pathlib import Path
from string import Formatter
from typing import Any, Final
from zoneinfo import ZoneInfo

from babel.dates import format_date as _babel_format_date
from babel.dates import format_datetime as _babel_format_datetime
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.numbers import format_decimal
from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send

from yikatong.settings import PROJECT_ROOT, get_settings

SUPPORTED_LOCALES: Final = ("zh_CN", "en")
FALLBACK_LOCALE: Final = "zh_CN"
LOCALE_COOKIE: Final = "yk_lang"
# Each language is named in itself so people who cannot read the current page find theirs.
LOCALE_NAMES: Final = {"zh_CN": "中文", "en": "English"}
LOCALES_DIR: Final = Path(__file__).resolve().parent / "locales"
CATALOGUE_DOMAIN: Final = "messages"
BABEL_CFG: Final = PROJECT_ROOT / "babel.cfg"

# Numeric forms read the same in both languages and sort; named Babel formats
# ("short", "medium", "long", "full") or any CLDR pattern can be passed instead.
DATETIME_FORMAT: Final = "yyyy-MM-dd HH:mm"
DATE_FORMAT: Final = "yyyy-MM-dd"
# Money is integer fen; the yuan sign is written out rather than taken from CLDR, which
# would print "CN¥" in English.
FEN_PATTERN: Final = "¥#,##0.00"

_BIG_NUMBER: Final = re.compile(r"\d{3,}")

_current_locale: ContextVar[str | None] = ContextVar("yikatong_locale", default=None)


# --- locales -------------------------------------------------------------------------------


def normalize_locale(value: str | None) -> str | None:
    """Return the supported locale code for ``value`` ("zh-CN", "zh_cn", "EN"), else None."""
    if not value:
        return None
    wanted = value.strip().replace("-", "_").lower()
    for code in SUPPORTED_LOCALES:
        if code.lower() == wanted:
            return code
    return None


def default_locale() -> str:
    """The deployment's default locale (settings ``default_locale``), zh_CN if unsupported."""
    return normalize_locale(get_settings().default_locale) or FALLBACK_LOCALE


def html_lang(locale: str) -> str:
    """BCP 47 tag for ``<html lang>`` and ``Content-Language``: ``zh_CN`` -> ``zh-CN``."""
    return locale.replace("_", "-")


def locale_of(request: HTTPConnection) -> str:
    """The locale for a request: ``request.state.locale`` if set, else cookie, else default."""
    chosen = normalize_locale(getattr(request.state, "locale", None))
    if chosen is None:
        chosen = normalize_locale(request.cookies.get(LOCALE_COOKIE))
    return chosen or default_locale()


def current_locale() -> str:
    """The locale set by :func:`use_locale` for this context, else the default."""
    return _current_locale.get() or default_locale()


@contextmanager
def use_locale(locale: str) -> Iterator[str]:
    """Translate with ``locale`` inside the block (per thread and per asyncio task)."""
    code = normalize_locale(locale)
    if code is None:
        raise ValueError(f"unsupported locale {locale!r}")
    token = _current_locale.set(code)
    try:
        yield code
    finally:
        _current_locale.reset(token)


class LocaleMiddleware:
    """Pure ASGI middleware: choose the request's locale once and translate with it.

    Optional: ``render()`` sets the locale itself, but with this middleware ``gettext()`` in
    endpoint code (flash messages, error details) also speaks the visitor's language.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        locale = locale_of(HTTPConnection(scope))
        scope.setdefault("state", {})["locale"] = locale
        with use_locale(locale):
            await self.app(scope, receive, send)


# --- catalogues ----------------------------------------------------------------------------


def catalogue_path(locale: str) -> Path:
    """Where the ``.po`` file of ``locale`` lives."""
    return LOCALES_DIR / locale / "LC_MESSAGES" / f"{CATALOGUE_DOMAIN}.po"


@lru_cache(maxsize=len(SUPPORTED_LOCALES))
def _load_translations(locale: str) -> _gettext.NullTranslations:
    if locale == "en":
        return _gettext.NullTranslations()
    with catalogue_path(locale).open("rb") as fh:
        catalog = read_po(fh, locale=locale, domain=CATALOGUE_DOMAIN)
    buffer = BytesIO()
    # Fuzzy entries are guesses by `pybabel update`; showing them would show wrong text.
    write_mo(buffer, catalog, use_fuzzy=False)
    buffer.seek(0)
    return _gettext.GNUTranslations(buffer)


def get_translations(locale: str) -> _gettext.NullTranslations:
    """The translations of a supported locale, loaded once; ValueError for others."""
    code = normalize_locale(locale)
    if code is None:
        raise ValueError(f"unsupported locale {locale!r}")
    return _load_translations(code)


def gettext_for(locale: str) -> Callable[[str], str]:
    """A ``gettext`` bound to ``locale`` regardless of the current context."""
    return get_translations(locale).gettext


def gettext(message: str) -> str:
    """Translate ``message`` into the current locale."""
    return get_translations(current_locale()).gettext(message)


def ngettext(singular: str, plural: str, n: int) -> str:
    """Translate a message with a count into the current locale (Chinese has one form)."""
    return get_translations(current_locale()).ngettext(singular, plural, n)


def translate_message(message: str, params: Mapping[str, Any] | None = None) -> str:
    """Translate a msgid held in a variable and fill in its ``{name}`` fields.

    For messages that travel as data (error titles, ``detail_template`` + ``params``). The
    message may contain text a visitor typed, so only plain ``{name}`` fields are filled
    (no ``{x.attr}`` or ``{x[0]}``), and a message that does not fit its params is returned
    translated but unfilled rather than failing the page.
    """
    text = gettext(message)
    if not params:
        return text
    try:
        fields = [(name, spec) for _lit, name, spec, _conv in Formatter().parse(text) if name]
        # No attribute or index lookups, and no huge widths ("{x:>999999999}").
        if all(name.isidentifier() and not _BIG_NUMBER.search(spec or "") for name, spec in fields):
            return text.format(**params)
    except (KeyError, IndexError, ValueError):
        pass
    return text


class LazyString:
    """A msgid translated when it is turned into text, for module-level constants.

    ``str()`` (and Jinja's ``{{ }}``) translate into the current locale, so a nav label
    defined at import time shows in whichever language each request uses.
    """

    __slots__ = ("msgid",)

    def __init__(self, msgid: str) -> None:
        self.msgid = msgid

    def __str__(self) -> str:
        return gettext(self.msgid)

    def __repr__(self) -> str:
        return f"lazy_gettext({self.msgid!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LazyString) and other.msgid == self.msgid

    def __hash__(self) -> int:
        return hash((LazyString, self.msgid))

    def translate(self, locale: str) -> str:
        """The text in a given locale."""
        return gettext_for(locale)(self.msgid)


def lazy_gettext(message: str) -> LazyString:
    """Mark ``message`` for extraction and translate it only when displayed."""
    return LazyString(message)


# --- formatting ----------------------------------------------------------------------------


@lru_cache(maxsize=4)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def display_timezone() -> ZoneInfo:
    """The zone times are shown in (settings ``timezone``, Asia/Shanghai)."""
    return _zone(get_settings().timezone)


def _as_utc(value: datetime) -> datetime:
    # Times are stored UTC-aware, but SQLite hands them back naive: naive means UTC.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def format_datetime(value: datetime, fmt: str = DATETIME_FORMAT, locale: str | None = None) -> str:
    """A stored (UTC) time as local time, e.g. ``2024-01-03 00:30``."""
    return _babel_format_datetime(
        _as_utc(value), fmt, tzinfo=display_timezone(), locale=locale or current_locale()
    )


def format_date(value: date | datetime, fmt: str = DATE_FORMAT, locale: str | None = None) -> str:
    """A date; a datetime is first converted to local time so the day is the local day."""
    if isinstance(value, datetime):
        value = _as_utc(value).astimezone(display_timezone()).date()
    return _babel_format_date(value, fmt, locale=locale or current_locale())


def format_number(
    value: int | float | Decimal, fmt: str | None = None, locale: str | None = None
) -> str:
    """A number with the locale's grouping, e.g. ``1,234,567``."""
    return format_decimal(value, format=fmt, locale=locale or current_locale())


def format_fen(amount_fen: int, locale: str | None = None) -> str:
    """Integer fen as yuan: ``123456`` -> ``¥1,234.56``, ``-5`` -> ``-¥0.05``."""
    # bool is an int, and floats would mean someone lost the integer-fen rule upstream.
    if isinstance(amount_fen, bool) or not isinstance(amount_fen, int):
        raise TypeError(f"money is integer fen, got {type(amount_fen).__name__}")
    yuan = Decimal(amount_fen).scaleb(-2)
    return format_decimal(yuan, format=FEN_PATTERN, locale=locale or current_locale())


# --- catalogue completeness ----------------------------------------------------------------


def extract_messages(root: Path = PROJECT_ROOT) -> dict[str, list[str]]:
    """Msgids found by ``pybabel extract -F babel.cfg`` under ``root`` -> ``["file:line"]``.

    Uses the same ``babel.cfg`` as the command line, so the test and ``make messages`` agree.
    Plural messages are keyed by their singular msgid, as in the catalogue.
    """
    cfg = root / "babel.cfg"
    with cfg.open(encoding="utf-8") as fh:
        # Babel leaves this parser unannotated.
        method_map, options_map = parse_mapping_cfg(fh, filename=str(cfg))  # type: ignore[no-untyped-call]
    package_dir = root / "yikatong"

    def only_package(dirpath: str) -> bool:
        path = Path(dirpath)
        if path.name.startswith((".", "_")):
            return False
        return path == package_dir or package_dir in path.parents

    found: dict[str, list[str]] = {}
    for filename, lineno, message, _comments, _context in extract_from_dir(
        root, method_map, options_map, directory_filter=only_package
    ):
        msgid = message[0] if isinstance(message, tuple | list) else message
        if not msgid:
            continue
        found.setdefault(msgid, []).append(f"{filename.replace(os.sep, '/')}:{lineno}")
    return found


def check_catalogue(locale: str = "zh_CN", root: Path = PROJECT_ROOT) -> list[str]:
    """Extracted msgids with no usable translation in ``locale`` (missing, empty or fuzzy)."""
    with catalogue_path(locale).open("rb") as fh:
        catalog = read_po(fh, locale=locale, domain=CATALOGUE_DOMAIN)
    missing = []
    for msgid in extract_messages(root):
        entry = catalog.get(msgid)
        strings = entry.string if entry is not None else ""
        texts = strings if isinstance(strings, tuple | list) else (strings,)
        if entry is None or entry.fuzzy or not all(texts):
            missing.append(msgid)
    return sorted(missing)
