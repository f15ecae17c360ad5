"""Catalogues, locale choice and the formatting helpers of yikatong.web.i18n."""

from __future__ import annotations

import gettext
import shutil
import threading
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest
from babel.messages.pofile import read_po

from yikatong.settings import PROJECT_ROOT
from yikatong.web import i18n

CATALOGUE = i18n.catalogue_path("zh_CN")


def test_every_extracted_message_has_a_chinese_translation() -> None:
    missing = i18n.check_catalogue()
    if missing:
        found = i18n.extract_messages()
        listing = "\n".join(f"  {msgid!r}  ({', '.join(found[msgid][:3])})" for msgid in missing)
        pytest.fail(
            f"{len(missing)} message(s) have no zh_CN translation:\n{listing}\n\n"
            "Fix: run `make messages` (pybabel extract + update), then fill in each empty "
            f"msgstr (and remove any `#, fuzzy` flag) in {CATALOGUE.relative_to(PROJECT_ROOT)}.",
            pytrace=False,
        )


def test_translations_keep_their_placeholders() -> None:
    with CATALOGUE.open("rb") as fh:
        catalog = read_po(fh, locale="zh_CN")
    problems = [f"{message.id!r}: {errors}" for message, errors in catalog.check()]
    assert not problems, "\n".join(problems)


def test_extraction_follows_babel_cfg_including_lazy_gettext(tmp_path: Path) -> None:
    shutil.copy(PROJECT_ROOT / "babel.cfg", tmp_path / "babel.cfg")
    package = tmp_path / "yikatong"
    (package / "web" / "templates").mkdir(parents=True)
    (package / "views.py").write_text(
        'LABEL = lazy_gettext("Lazy label")\nTITLE = N_("Marked title")\n'
        'def f(): return gettext("Plain") + _("Underscore")\n',
        encoding="utf-8",
    )
    (package / "web" / "templates" / "page.html").write_text(
        '{{ _("In a template") }}{% trans %}Trans block{% endtrans %}', encoding="utf-8"
    )
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_x.py").write_text('_("Not part of the package")\n')
    found = i18n.extract_messages(tmp_path)
    assert set(found) == {
        "Lazy label",
        "Marked title",
        "Plain",
        "Underscore",
        "In a template",
        "Trans block",
    }
    assert found["Lazy label"] == ["yikatong/views.py:1"]


def test_the_real_sources_are_extracted() -> None:
    found = i18n.extract_messages()
    assert "Staff sign-in" in found  # templates
    assert "This language is not available." in found  # N_() in yikatong/web/pages.py


def test_chinese_comes_from_the_po_file_and_english_needs_none() -> None:
    zh = i18n.get_translations("zh_CN")
    assert isinstance(zh, gettext.GNUTranslations)
    assert zh.gettext("Staff sign-in") == "工作人员登录"
    assert i18n.get_translations("zh-CN") is zh  # loaded once
    en = i18n.get_translations("en")
    assert en.gettext("Staff sign-in") == "Staff sign-in"
    assert i18n.gettext_for("zh_CN")("How to apply") == "如何申领"


def test_unsupported_locale_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported"):
        i18n.get_translations("fr")
    with pytest.raises(ValueError, match="unsupported"), i18n.use_locale("xx"):
        pass


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("zh_CN", "zh_CN"),
        ("zh-CN", "zh_CN"),
        ("ZH_cn", "zh_CN"),
        ("en", "en"),
        ("EN", "en"),
        ("fr", None),
        ("", None),
        (None, None),
    ],
)
def test_normalize_locale(raw: str | None, expected: str | None) -> None:
    assert i18n.normalize_locale(raw) == expected


def test_default_locale_is_chinese() -> None:
    assert i18n.default_locale() == "zh_CN"
    assert i18n.current_locale() == "zh_CN"


def test_gettext_and_ngettext_follow_the_current_locale() -> None:
    with i18n.use_locale("en"):
        assert i18n.gettext("How to apply") == "How to apply"
        assert i18n.ngettext("%(n)s card", "%(n)s cards", 1) == "%(n)s card"
        assert i18n.ngettext("%(n)s card", "%(n)s cards", 3) == "%(n)s cards"
    with i18n.use_locale("zh_CN"):
        assert i18n.gettext("How to apply") == "如何申领"


def test_lazy_string_translates_when_used() -> None:
    label = i18n.lazy_gettext("Staff sign-in")
    with i18n.use_locale("en"):
        assert str(label) == "Staff sign-in"
    with i18n.use_locale("zh_CN"):
        assert str(label) == "工作人员登录"
        assert f"{label}" == "工作人员登录"
    assert label.translate("en") == "Staff sign-in"
    assert label == i18n.lazy_gettext("Staff sign-in")
    assert hash(label) == hash(i18n.lazy_gettext("Staff sign-in"))


def test_locale_does_not_leak_between_threads() -> None:
    barrier = threading.Barrier(2)
    seen: dict[str, str] = {}

    def worker(locale: str) -> None:
        with i18n.use_locale(locale):
            barrier.wait()  # both threads have set their locale before either translates
            seen[locale] = i18n.gettext("How to apply")

    threads = [threading.Thread(target=worker, args=(code,)) for code in ("zh_CN", "en")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == {"zh_CN": "如何申领", "en": "How to apply"}


@pytest.mark.parametrize(
    ("fen", "text"),
    [
        (123456, "¥1,234.56"),
        (0, "¥0.00"),
        (1, "¥0.01"),
        (100, "¥1.00"),
        (-5, "-¥0.05"),
        (-123456, "-¥1,234.56"),
        (10**12 + 7, "¥10,000,000,000.07"),
    ],
)
@pytest.mark.parametrize("locale", ["zh_CN", "en"])
def test_format_fen(fen: int, text: str, locale: str) -> None:
    assert i18n.format_fen(fen, locale=locale) == text


@pytest.mark.parametrize("bad", [12.5, Decimal("1.00"), True, "100"])
def test_format_fen_insists_on_integer_fen(bad: object) -> None:
    with pytest.raises(TypeError, match="integer fen"):
        i18n.format_fen(bad)  # type: ignore[arg-type]


def test_format_datetime_shows_shanghai_time() -> None:
    stored = datetime(2024, 1, 2, 16, 30, tzinfo=UTC)
    assert i18n.format_datetime(stored, locale="zh_CN") == "2024-01-03 00:30"
    assert i18n.format_datetime(stored, "long", locale="zh_CN").startswith("2024年1月3日")
    assert i18n.format_datetime(stored, "medium", locale="en") == "Jan 3, 2024, 12:30:00\u202fAM"
    # SQLite returns naive datetimes: they are UTC.
    assert i18n.format_datetime(stored.replace(tzinfo=None), locale="zh_CN") == "2024-01-03 00:30"
    other_zone = stored.astimezone(timezone(timedelta(hours=-5)))
    assert i18n.format_datetime(other_zone, locale="zh_CN") == "2024-01-03 00:30"


def test_format_date_uses_the_local_day() -> None:
    late_evening_utc = datetime(2024, 1, 2, 16, 30, tzinfo=UTC)
    assert i18n.format_date(late_evening_utc, locale="zh_CN") == "2024-01-03"
    assert i18n.format_date(date(2024, 5, 1), "long", locale="zh_CN") == "2024年5月1日"


def test_format_number() -> None:
    assert i18n.format_number(1234567, locale="zh_CN") == "1,234,567"
    assert i18n.format_number(Decimal("1234.5"), locale="en") == "1,234.5"


def test_translate_message_fills_only_plain_fields() -> None:
    with i18n.use_locale("zh_CN"):
        assert i18n.translate_message("Staff sign-in") == "工作人员登录"
        assert i18n.translate_message("No card {name}", {"name": "X1"}) == "No card X1"
        # Attribute access in a message (which may hold visitor input) is never evaluated.
        attack = "{name.__class__.__mro__}"
        assert i18n.translate_message(attack, {"name": "x"}) == attack
        assert i18n.translate_message("Missing {other}", {"name": "x"}) == "Missing {other}"
        assert i18n.translate_message("{name:>999999999}", {"name": "x"}) == "{name:>999999999}"
        assert i18n.translate_message("{0}", {"name": "x"}) == "{0}"


def test_every_problem_title_is_marked_for_translation() -> None:
    """Error pages show a problem's title through |translate: it must be in the catalogue."""
    import yikatong.app  # noqa: F401 - importing the app registers every problem type
    from yikatong.errors import PROBLEM_TYPES

    found = i18n.extract_messages()
    zh = i18n.gettext_for("zh_CN")
    unmarked = sorted(
        f"  {p.code}: {p.title!r}"
        for p in PROBLEM_TYPES.values()
        if p.title not in found or zh(p.title) == p.title
    )
    if unmarked:
        pytest.fail(
            f"{len(unmarked)} problem title(s) would show in English on Chinese pages:\n"
            + "\n".join(unmarked)
            + '\n\nFix: write each title as N_("...") (from yikatong.errors) where it is '
            "defined, run `make messages`, and translate it in "
            f"{CATALOGUE.relative_to(PROJECT_ROOT)}.",
            pytrace=False,
        )
