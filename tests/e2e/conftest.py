"""Fixtures of the browser tests: a live server (``live.py``) and Debian's Chromium.

Chromium is launched through Playwright from the system package at ``browser_path``;
Playwright never downloads a browser here. Without Chromium the tests are skipped (or fail
under ``YIKATONG_TEST_REQUIRE=chromium``, see tests/conftest.py).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.live import LiveServer, serve

DEMO_RESIDENTS = 300
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
# The same lookup as tests/conftest.py, so the server is not seeded for tests that will skip.
_HAS_CHROMIUM = bool(shutil.which("chromium")) or Path("/usr/bin/chromium").exists()


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The application on a free port of 127.0.0.1, on a fresh seeded SQLite database."""
    if not _HAS_CHROMIUM:
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    with serve(tmp_path_factory.mktemp("e2e"), DEMO_RESIDENTS) as server:
        yield server


@pytest.fixture(scope="module")
def playwright_driver() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    driver = sync_playwright().start()
    yield driver
    driver.stop()


@pytest.fixture
def chromium(browser_path: str, playwright_driver: Any) -> Iterator[Any]:
    """Debian's Chromium, headless; skipped (by ``browser_path``) when it is not installed."""
    browser = playwright_driver.chromium.launch(executable_path=browser_path, args=CHROMIUM_ARGS)
    yield browser
    browser.close()
