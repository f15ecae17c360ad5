"""Vendored assets are the pinned upstream files, and every page works with no internet."""

from __future__ import annotations

import hashlib
import re
from html.parser import HTMLParser
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from yikatong.web.templating import STATIC_DIR, TEMPLATES_DIR

VENDOR_DIR = STATIC_DIR / "vendor"
VERSIONS_MD = VENDOR_DIR / "VERSIONS.md"
# A row of the "Files" table: | `path` | package | origin | `sha256` |
FILE_ROW = re.compile(r"^\|\s*`([^`]+)`\s*\|[^|]*\|[^|]*\|\s*`([0-9a-f]{64})`\s*\|\s*$")
REMOTE_ASSET = re.compile(
    r"<(?:script|link)\b[^>]*\b(?:src|href)\s*=\s*[\"']?\s*(?:https?:)?//", re.IGNORECASE
)


def listed_files() -> dict[str, str]:
    rows = {}
    for line in VERSIONS_MD.read_text(encoding="utf-8").splitlines():
        match = FILE_ROW.match(line)
        if match:
            rows[match.group(1)] = match.group(2)
    return rows


def test_versions_md_lists_the_vendored_libraries() -> None:
    files = listed_files()
    assert "htmx/2.0.11/htmx.min.js" in files
    assert "echarts/6.1.0/echarts.min.js" in files
    assert "bootstrap/5.3.9/css/bootstrap.min.css" in files
    assert "bootstrap/5.3.9/js/bootstrap.bundle.min.js" in files


@pytest.mark.parametrize(("relpath", "sha256"), sorted(listed_files().items()))
def test_vendored_file_matches_its_checksum(relpath: str, sha256: str) -> None:
    path = VENDOR_DIR / relpath
    assert path.is_file(), f"{relpath} is listed in VERSIONS.md but missing"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == sha256, (
        f"{relpath} differs from the pinned upstream file; re-vendor it as VERSIONS.md says"
    )


def test_vendor_holds_only_listed_files_and_no_source_maps() -> None:
    present = {
        p.relative_to(VENDOR_DIR).as_posix()
        for p in VENDOR_DIR.rglob("*")
        if p.is_file() and p != VERSIONS_MD
    }
    assert present == set(listed_files()), "every vendored file must be listed in VERSIONS.md"
    assert not [p for p in present if p.endswith(".map")]


def test_every_vendored_version_ships_its_licence() -> None:
    for version_dir in (p for p in VENDOR_DIR.glob("*/*") if p.is_dir()):
        assert (version_dir / "LICENSE").is_file(), f"{version_dir} has no LICENSE"


def test_no_template_loads_scripts_or_styles_from_the_internet() -> None:
    offenders = [
        f"{path.relative_to(TEMPLATES_DIR)}: {match.group(0)}"
        for path in TEMPLATES_DIR.rglob("*.html")
        for match in REMOTE_ASSET.finditer(path.read_text(encoding="utf-8"))
    ]
    assert not offenders, "templates must use vendored assets, not CDNs:\n" + "\n".join(offenders)


def test_own_css_and_js_fetch_nothing_remote() -> None:
    for path in [*STATIC_DIR.glob("css/*.css"), *STATIC_DIR.glob("js/*.js")]:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"(?:url\(|@import)\s*[\"']?\s*(?:https?:)?//", text), path
        assert "http://" not in text
        assert "https://" not in text


class _References(HTMLParser):
    """Collects every src/href in a page (including <use href> of the icon sprite)."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.remote_assets: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.urls.append(value)
                if tag in ("script", "link", "img") and re.match(r"(?:https?:)?//", value):
                    self.remote_assets.append(value)


PAGES = ["/", "/_test/console/cards", "/_test/form", "/_test/boom", "/lang/xx"]


@pytest.mark.parametrize("page", PAGES)
def test_every_static_reference_in_a_page_resolves(client: TestClient, page: str) -> None:
    response = client.get(page)
    parser = _References()
    parser.feed(response.text)
    assert not parser.remote_assets
    static_urls = {url for url in parser.urls if url.startswith("/static/")}
    assert any("bootstrap.min.css" in url for url in static_urls)
    assert any("htmx.min.js" in url for url in static_urls)
    sprite = (STATIC_DIR / "img" / "icons.svg").read_text(encoding="utf-8")
    for url in sorted(static_urls):
        path, _, fragment = url.partition("#")
        fetched = client.get(path)
        assert fetched.status_code == 200, f"{page} references missing {url}"
        if fragment:
            assert f'id="{fragment}"' in sprite, f"{page} uses unknown icon {fragment}"


def test_static_files_served_from_the_package() -> None:
    assert Path(STATIC_DIR, "css", "app.css").is_file()
    assert Path(STATIC_DIR, "js", "app.js").is_file()
