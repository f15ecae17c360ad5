"""Online QR verification over real HTTP: uvicorn with one worker, load from a second process.

    python -m bench.verify_http_bench [--requests 12000] [--concurrency 16]
                                      [--database postgresql+psycopg://.../test --drop-schema]

Prepares a fresh database (SQLite file by default) with card holders, issued cards and
e-cards, signs one fresh identity code per request (every code verifies once: replays are
refused), starts ``uvicorn yikatong.app:create_app`` with one worker in its own process, and
drives ``POST /api/v1/ecard/verify`` from a separate load process over keep-alive
connections. Each request is a full online check: SM2 signature, card state, blacklist and
replay store, through the verification gateway (``yikatong/ecard/gateway.py``).
Target: >= 1,500 requests/s with p99 <= 20 ms, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def prepare(url: str, holders: int, requests: int) -> tuple[str, str, list[str]]:
    """Seed holders with active cards and e-cards; return (cookie, csrf, codes)."""
    import random

    from fastapi.testclient import TestClient
    from sqlalchemy.orm import sessionmaker

    from yikatong import migrate
    from yikatong.app import create_app
    from yikatong.cards import service as cards
    from yikatong.cards.banks import COOPERATING_BANKS, demo_account_number
    from yikatong.cards.models import ApplicationStatus, Channel
    from yikatong.db import make_engine, transaction, use_engine
    from yikatong.demo.seed import seed_residents
    from yikatong.ecard import service as ecard
    from yikatong.ecard.qr import Purpose
    from yikatong.kit.actor import Actor, Role
    from yikatong.residents.models import Resident
    from yikatong.staff import service as staff

    engine = make_engine(url)
    migrate.upgrade(engine)
    use_engine(engine)
    factory = sessionmaker(engine, expire_on_commit=False)
    rng = random.Random(5)
    operator = Actor.system("bench", region_code="441600")
    with factory() as session, transaction(session):
        seed_residents(session, holders, seed=11)
        verifier = staff.create_staff(
            session,
            operator,
            username="bench.verifier",
            display_name="核验终端",
            role=Role.COUNTER_CLERK,
            region_code="441600",
            password="Bench2026verify",
        )
        ids = [r for (r,) in session.query(Resident.id).limit(holders)]
        for resident_id in ids:
            application = cards.apply(
                session, operator, resident_id=resident_id, channel=Channel.COUNTER
            )
            for step in (
                ApplicationStatus.CHECKED,
                ApplicationStatus.IN_PRODUCTION,
                ApplicationStatus.READY,
            ):
                cards.advance(session, operator, application.id, step)
            bank = COOPERATING_BANKS[0]
            cards.issue_card(
                session,
                operator,
                application.card_id,  # type: ignore[arg-type]
                bank_code=bank.code,
                bank_account=demo_account_number(bank, rng),
            )
            ecard.issue_ecard(session, operator, resident_id, "582947")
    with factory() as session, transaction(session):
        codes = [
            ecard.issue_code(
                session, operator, ids[i % len(ids)], Purpose.IDENTITY, lifetime=300
            ).text
            for i in range(requests)
        ]
    app = create_app()
    app.state.session_factory = factory
    with TestClient(app) as client:
        res = client.post(
            "/api/v1/auth/login",
            json={
                "username": "bench.verifier",
                "password": "Bench2026verify",
                "code": staff.current_totp(verifier.member),
            },
        )
        res.raise_for_status()
        cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
        csrf = res.json()["csrf_token"]
    engine.dispose()
    return cookie, csrf, codes


async def _drive(
    port: int, cookie: str, csrf: str, codes: list[str], concurrency: int
) -> tuple[list[float], int, float]:
    queue = list(reversed(codes))
    latencies: list[float] = []
    failures = 0

    async def worker() -> None:
        nonlocal failures
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        while queue:
            code = queue.pop()
            body = json.dumps({"code": code, "purpose": "identity"}).encode()
            request = (
                f"POST /api/v1/ecard/verify HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
                f"Cookie: {cookie}\r\nX-CSRF-Token: {csrf}\r\n\r\n"
            ).encode() + body
            started = time.perf_counter()
            writer.write(request)
            await writer.drain()
            status_line = await reader.readline()
            length = 0
            while True:
                line = await reader.readline()
                if line in (b"\r\n", b""):
                    break
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - started)
            if b" 200 " not in status_line:
                failures += 1
        writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, failures, time.perf_counter() - started


def _load_process(
    port: int,
    cookie: str,
    csrf: str,
    codes: list[str],
    concurrency: int,
    out: multiprocessing.Queue,
) -> None:  # type: ignore[type-arg]
    out.put(asyncio.run(_drive(port, cookie, csrf, codes, concurrency)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=12_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--holders", type=int, default=200)
    parser.add_argument("--database", help="SQLAlchemy URL (default: a temporary SQLite file)")
    parser.add_argument(
        "--drop-schema",
        action="store_true",
        help="required with PostgreSQL: the public schema is recreated",
    )
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="yikatong-bench-"))
    url = args.database or f"sqlite:///{tmp / 'bench.db'}"
    if not url.startswith("sqlite"):
        if not args.drop_schema:
            parser.error("this benchmark recreates the database schema: add --drop-schema")
        from sqlalchemy import create_engine, text

        with create_engine(url).begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    env = {
        **os.environ,
        "YIKATONG_DATABASE_URL": url,
        "YIKATONG_ENV": "development",
        "YIKATONG_KEYSTORE_PATH": str(tmp / "keys"),
        "YIKATONG_LOG_LEVEL": "WARNING",
    }
    os.environ.update({k: env[k] for k in ("YIKATONG_DATABASE_URL", "YIKATONG_KEYSTORE_PATH")})
    warmup = 500
    cookie, csrf, codes = prepare(url, args.holders, args.requests + warmup)

    port = _free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "yikatong.app:create_app",
            "--factory",
            "--port",
            str(port),
            "--workers",
            "1",
            "--no-access-log",
            "--log-level",
            "warning",
        ],
        env=env,
        stderr=(tmp / "server.log").open("w"),
    )
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        out: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
        for batch, measured in ((codes[:warmup], False), (codes[warmup:], True)):
            loader = multiprocessing.Process(
                target=_load_process, args=(port, cookie, csrf, batch, args.concurrency, out)
            )
            loader.start()
            latencies, failures, elapsed = out.get()
            loader.join()
            if not measured:
                continue
    finally:
        server.terminate()
        server.wait(10)
        log = (tmp / "server.log").read_text()
        if "Traceback" in log or "ERROR" in log:
            print(log[-3000:], file=sys.stderr)

    latencies.sort()
    p = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000  # noqa: E731
    result = {
        "database": "postgresql" if url.startswith("postgresql") else "sqlite",
        "requests": len(latencies),
        "failures": failures,
        "requests_per_s": round(len(latencies) / elapsed),
        "p50_ms": round(p(0.50), 2),
        "p99_ms": round(p(0.99), 2),
        "mean_ms": round(statistics.fmean(latencies) * 1000, 2),
        "concurrency": args.concurrency,
        "target": ">= 1500/s, p99 <= 20 ms",
    }
    if args.json:
        print(json.dumps(result))
        return
    print(
        f"{result['database']}: {result['requests_per_s']:,} verifications/s over HTTP "
        f"(p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms, {result['requests']:,} "
        f"requests, {failures} not 200, concurrency {args.concurrency}; "
        f"target >= 1,500/s, p99 <= 20 ms)"
    )


if __name__ == "__main__":
    main()
