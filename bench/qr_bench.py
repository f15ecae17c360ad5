"""E-card QR code throughput: offline verification against raw SM2, issuance through the service.

Run ``python -m bench.qr_bench`` (add ``--json`` for machine-readable output). Targets (issue 3):

* offline verification in-process (decode, key lookup, signature, validity, purpose) at no
  less than 80 % of the raw SM2 verification rate measured in the same run, on the same core;
  both are rates per second of user CPU time, like ``bench.crypto_bench``;
* code issuance through ``ecard.service.issue_code`` at no less than 1,000 codes/s on SQLite,
  each code in its own committed transaction (a request), audit entry included; this one is
  wall-clock, because the database's I/O is part of the cost.

Online verification through the service (card, blacklist, e-card, nonce store, audit; one
transaction each) is reported too; the HTTP figure of the issue belongs to a later benchmark.
Everything runs against a throw-away key store and SQLite file, never ``var/``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import os
import random
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.crypto_bench import pin_to_one_core, rate, use_temporary_keystore

OFFLINE_TARGET = 0.80
ISSUE_TARGET = 1_000.0
HOLDERS = 100
PASSWORD = "739514"


def wall_rate(operation: Callable[[], object], seconds: float, warm_up: int = 50) -> float:
    """Operations per wall-clock second, run for at least ``seconds``."""
    for _ in range(warm_up):
        operation()
    count = 0
    started = time.perf_counter()
    deadline = started + seconds
    while time.perf_counter() < deadline:
        operation()
        count += 1
    return count / (time.perf_counter() - started)


def measure_offline(seconds: float) -> dict[str, float]:
    """Raw SM2 verification of the very bytes a code signs, then the whole offline verifier."""
    from yikatong.crypto.keystore import get_keyring
    from yikatong.crypto.sm2 import raw_to_der
    from yikatong.ecard import qr

    version, key = get_keyring().active_signing_key()
    now = dt.datetime.now(dt.UTC)
    payload = qr.new_payload(
        key_id=version,
        token=os.urandom(16),
        purpose=qr.Purpose.IDENTITY,
        region="441600",
        now=now,
        lifetime=qr.MAX_LIFETIME,
    )
    code = qr.sign_code(payload, key)
    text = qr.encode(code)
    keys = {version: key.public_key()}
    public = key.public_key()
    message = qr.SIGNING_CONTEXT + payload.to_bytes()
    signature = raw_to_der(code.signature)
    qr.verify_offline(text, keys, now, qr.Purpose.IDENTITY)  # must succeed before timing
    return {
        "sm2_verify_per_s": rate(lambda: public.verify(signature, message), seconds),
        "offline_verify_per_s": rate(
            lambda: qr.verify_offline(text, keys, now, qr.Purpose.IDENTITY), seconds
        ),
        "decode_per_s": rate(lambda: qr.decode(text), seconds, batch=500),
        "code_bytes": float(len(code.to_bytes())),
        "code_chars": float(len(text)),
    }


def seed_holders(count: int) -> list[int]:
    """Residents with an issued card and an e-card, through the real services."""
    from yikatong.cards import service as cards
    from yikatong.cards.banks import COOPERATING_BANKS, demo_account_number
    from yikatong.cards.models import ApplicationStatus, Channel
    from yikatong.db import job
    from yikatong.ecard import service as ecard
    from yikatong.kit.actor import Actor
    from yikatong.reference.idnumber import make_id_number
    from yikatong.residents.repository import NewResident, add_resident

    rng = random.Random(2026)
    clerk = Actor.system("bench:qr")
    ids = []
    with job() as session:
        for n in range(count):
            birth = dt.date(1960 + n % 40, 1 + n % 12, 1 + n % 28)
            resident = add_resident(
                session,
                NewResident(
                    id_number=make_id_number("441602", birth, n % 1000),
                    name="张小三",
                    sex="male" if n % 2 else "female",
                    birth_date=birth,
                    region_code="441602",
                ),
            )
            application = cards.apply(
                session, clerk, resident_id=resident.id, channel=Channel.COUNTER
            )
            for step in (
                ApplicationStatus.CHECKED,
                ApplicationStatus.IN_PRODUCTION,
                ApplicationStatus.READY,
            ):
                cards.advance(session, clerk, application.id, step)
            if application.card_id is None:
                raise RuntimeError("no card was produced")
            bank = COOPERATING_BANKS[n % len(COOPERATING_BANKS)]
            cards.issue_card(
                session,
                clerk,
                application.card_id,
                bank_code=bank.code,
                bank_account=demo_account_number(bank, rng),
            )
            ecard.issue_ecard(session, clerk, resident.id, PASSWORD)
            ids.append(resident.id)
    return ids


def measure_service(seconds: float, holders: int) -> dict[str, float]:
    """Issuance and online verification, one committed transaction per call, on SQLite."""
    from yikatong.db import job
    from yikatong.ecard import service as ecard
    from yikatong.ecard.qr import Purpose
    from yikatong.kit.actor import Actor

    resident_ids = seed_holders(holders)
    cycle = itertools.count()
    actors = {rid: Actor.resident(rid, "张*三", "441602") for rid in resident_ids}
    codes: list[str] = []

    def issue() -> None:
        rid = resident_ids[next(cycle) % len(resident_ids)]
        with job() as session:
            codes.append(ecard.issue_code(session, actors[rid], rid, Purpose.IDENTITY).text)

    issue_per_s = wall_rate(issue, seconds)

    verifier = Actor.system("bench:verifier")
    # Codes are verified in the order they were issued, each once, all still within validity.
    done = 0
    started = time.perf_counter()
    for text in codes:
        with job() as session:
            ecard.verify_online(session, verifier, text, Purpose.IDENTITY)
        done += 1
        if time.perf_counter() - started >= seconds:
            break
    elapsed = time.perf_counter() - started
    return {
        "issue_per_s": issue_per_s,
        "online_verify_per_s": done / elapsed,
        "holders": float(holders),
    }


def render(report: dict[str, Any]) -> str:
    """The human-readable table."""
    offline, service = report["offline"], report["service"]

    def verdict(met: bool) -> str:
        return "met" if met else "NOT met"

    lines = [
        f"yikatong e-card QR benchmark — Python {report['python']}, CPU {report['cpu']}, "
        f"{report['seconds']} s per figure",
        f"code: {offline['code_bytes']:.0f} bytes binary, {offline['code_chars']:.0f} characters "
        "of text (YKT1: + base45)",
        "",
        f"{'figure':<44}{'per second':>14}",
        "-" * 58,
        f"{'raw SM2 verify (CPU)':<44}{offline['sm2_verify_per_s']:>14,.0f}",
        f"{'offline QR verify, in-process (CPU)':<44}{offline['offline_verify_per_s']:>14,.0f}",
        f"{'QR decode only (CPU)':<44}{offline['decode_per_s']:>14,.0f}",
        f"{'issue_code via service, SQLite (wall)':<44}{service['issue_per_s']:>14,.0f}",
        f"{'verify_online via service, SQLite (wall)':<44}{service['online_verify_per_s']:>14,.0f}",
        "",
        f"offline verify ≥ {OFFLINE_TARGET:.0%} of raw SM2 verify: "
        f"{verdict(report['offline_target_met'])} ({report['offline_ratio']:.1%})",
        f"issuance ≥ {ISSUE_TARGET:,.0f} codes/s: {verdict(report['issue_target_met'])} "
        f"({service['issue_per_s']:,.0f}/s)",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--json", action="store_true", help="print machine-readable results")
    parser.add_argument("--seconds", type=int, default=3, help="duration of each figure (≥ 3)")
    parser.add_argument("--holders", type=int, default=HOLDERS, help="e-card holders to seed")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is not met")
    args = parser.parse_args(argv)
    seconds = max(3, args.seconds)

    cpu = pin_to_one_core()
    with tempfile.TemporaryDirectory(prefix="yikatong-qr-bench-") as directory:
        os.environ["YIKATONG_DATABASE_URL"] = f"sqlite:///{Path(directory) / 'bench.db'}"
        use_temporary_keystore(str(Path(directory) / "keys"))
        from yikatong import migrate
        from yikatong.db import make_engine, use_engine

        engine = make_engine()
        migrate.upgrade(engine)
        use_engine(engine)
        import yikatong.models  # noqa: F401 - every table and event handler registered

        offline = measure_offline(seconds)
        service = measure_service(seconds, max(1, args.holders))
        engine.dispose()

    ratio = offline["offline_verify_per_s"] / offline["sm2_verify_per_s"]
    report: dict[str, Any] = {
        "python": sys.version.split()[0],
        "cpu": cpu,
        "seconds": seconds,
        "offline": offline,
        "service": service,
        "offline_ratio": ratio,
        "offline_target": OFFLINE_TARGET,
        "offline_target_met": ratio >= OFFLINE_TARGET,
        "issue_target": ISSUE_TARGET,
        "issue_target_met": service["issue_per_s"] >= ISSUE_TARGET,
    }
    print(json.dumps(report, indent=2) if args.json else render(report))
    met = report["offline_target_met"] and report["issue_target_met"]
    return 1 if args.check and not met else 0


if __name__ == "__main__":
    sys.exit(main())
