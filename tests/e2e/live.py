"""A live yikatong server for the browser tests: uvicorn in a thread, on its own database.

The application is the real one from ``create_app()``, served on a free port of 127.0.0.1, on
a fresh SQLite file migrated to head and seeded with demo residents and the demo staff, with
its own session factory: pages commit for real, as in production, and nothing touches the
rolled-back test database of the other suites.
"""

from __future__ import annotations

import socket
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import uvicorn
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from yikatong import migrate
from yikatong.app import create_app
from yikatong.db import make_engine
from yikatong.demo.seed import DEMO_PASSWORD, seed_residents, seed_staff
from yikatong.residents.models import Resident

DONGYUAN = "441625"


@dataclass(frozen=True)
class LiveServer:
    url: str
    engine: Engine
    password: str  # of every demo account
    totp_secrets: dict[str, str]  # demo user name -> TOTP secret
    surname_dongyuan: str  # the commonest surname among the residents of Dongyuan

    def session(self) -> Session:
        return Session(self.engine, expire_on_commit=False)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _seed(engine: Engine, residents: int) -> tuple[dict[str, str], str]:
    """Demo residents and staff (the seeding audits itself); the TOTP secrets and a surname."""
    with Session(engine, expire_on_commit=False) as session:
        seed_residents(session, residents)
        created = seed_staff(session)
        session.commit()
        names = session.scalars(select(Resident.name).where(Resident.region_code == DONGYUAN))
        surnames = Counter(name[0] for name in names)
    assert surnames, "the demo city has no residents in Dongyuan"
    secrets = {login.staff.username: login.totp_secret for login in created}
    return secrets, surnames.most_common(1)[0][0]


@contextmanager
def serve(directory: Path, residents: int) -> Iterator[LiveServer]:
    """Migrate, seed, serve until the block ends, then stop the server and the engine."""
    engine = make_engine(f"sqlite:///{directory / 'yikatong.db'}")
    migrate.upgrade(engine)
    secrets, surname = _seed(engine, residents)

    app = create_app()
    app.state.session_factory = sessionmaker(engine, expire_on_commit=False)
    port = _free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_config=None, access_log=False, lifespan="on"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="e2e-uvicorn", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 15
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the live server did not start")
            time.sleep(0.02)
        yield LiveServer(f"http://127.0.0.1:{port}", engine, DEMO_PASSWORD, secrets, surname)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        engine.dispose()
