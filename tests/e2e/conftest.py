"""A live yikatong server and Debian's Chromium for the browser tests.

The server is the real application served by uvicorn on 127.0.0.1 in a background thread,
on its own SQLite file (migrated and seeded with demo residents and the demo staff) and its
own session factory: pages commit for real, as in production, and nothing touches the test
database of the other suites. Chromium is launched through Playwright from the system
package; Playwright never downloads a browser here.
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

DEMO_RESIDENTS = 300
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
_CHROMIUM = shutil.which("chromium") or (
    "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
)


@dataclass(frozen=True)
class LiveServer:
    url: str
    engine: Engine
    totp_secrets: dict[str, str]  # demo user name -> TOTP secret
    password: str
    surname_dy: str  # the commonest surname among the residents of Dongyuan (441625)

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _seed(engine: Engine) -> tuple[dict[str, str], str]:
    from yikatong.demo.seed import seed_residents, seed_staff
    from yikatong.residents.models import Resident

    with Session(engine, expire_on_commit=False) as session:
        seed_residents(session, DEMO_RESIDENTS)
        created = seed_staff(session)
        session.commit()
        names = session.scalars(
            select(Resident.name).where(Resident.region_code == "441625")
        ).all()
    assert names, "the demo city has no residents in Dongyuan"
    surnames: dict[str, int] = {}
    for name in names:
        surnames[name[0]] = surnames.get(name[0], 0) + 1
    return {c.staff.username: c.totp_secret for c in created}, max(surnames, key=surnames.get)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The application on a free port of 127.0.0.1, on a fresh seeded SQLite database."""
    if _CHROMIUM is None:  # decided before seeding: the browser tests alone use this server
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    import uvicorn

    from yikatong import migrate
    from yikatong.app import create_app
    from yikatong.db import make_engine
    from yikatong.demo.seed import DEMO_PASSWORD

    db_file = tmp_path_factory.mktemp("e2e") / "yikatong.db"
    engine = make_engine(f"sqlite:///{db_file}")
    migrate.upgrade(engine)
    secrets, surname = _seed(engine)

    app = create_app()
    app.state.session_factory = sessionmaker(engine, expire_on_commit=False)
    port = _free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="e2e-uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            pytest.fail("the live server did not start")
        time.sleep(0.02)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", engine, secrets, DEMO_PASSWORD, surname)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        engine.dispose()


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

