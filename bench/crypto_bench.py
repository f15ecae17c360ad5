"""Throughput of the national-crypto layer against the OpenSSL ceiling.

Run ``python -m bench.crypto_bench`` (add ``--json`` for machine-readable output). SM2 figures are
compared with ``openssl speed -seconds N sm2`` measured on the same core; the target is SM2
verification at no less than 80 % of OpenSSL's rate. Rates are per second of user CPU time, as
``openssl speed`` reports them. Everything runs against a throw-away key store, never
``var/keys``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

VERIFY_TARGET = 0.80
_OPENSSL_SM2_LINE = re.compile(
    r"^\s*256 bits SM2 \(CurveSM2\)\s+\S+s\s+\S+s\s+(?P<sign>[\d.]+)\s+(?P<verify>[\d.]+)\s*$",
    re.MULTILINE,
)


def pin_to_one_core() -> int | None:
    """Pin this process (and the openssl child it starts) to one CPU, so both compare fairly."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    cpu = min(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cpu})
    return cpu


def openssl_sm2(seconds: int) -> dict[str, Any]:
    """Sign/s and verify/s reported by ``openssl speed``; ``None`` figures if unavailable."""
    binary = shutil.which("openssl")
    result: dict[str, Any] = {"sign_per_s": None, "verify_per_s": None, "version": None}
    if binary is None:
        result["error"] = "openssl not found"
        return result
    version = subprocess.run([binary, "version"], capture_output=True, text=True, check=False)
    result["version"] = version.stdout.strip()
    run = subprocess.run(
        [binary, "speed", "-seconds", str(seconds), "sm2"],
        capture_output=True,
        text=True,
        check=False,
    )
    match = _OPENSSL_SM2_LINE.search(run.stdout)
    if run.returncode != 0 or match is None:
        result["error"] = (run.stderr or run.stdout).strip().splitlines()[-1:] or ["no output"]
        return result
    result["sign_per_s"] = float(match["sign"])
    result["verify_per_s"] = float(match["verify"])
    return result


def rate(operation: Callable[[], object], seconds: float, batch: int = 50) -> float:
    """Operations per CPU-second of ``operation``, run for at least ``seconds`` of wall time.

    Like ``openssl speed``, which divides its count by user CPU time, this divides by the
    process's user CPU time, so time stolen by other processes on a shared machine does not
    count against either side of the comparison.
    """
    for _ in range(batch):  # warm caches and lazy initialisation outside the timed window
        operation()
    count = 0
    cpu_start = os.times().user
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        for _ in range(batch):
            operation()
        count += batch
    return count / max(os.times().user - cpu_start, 1e-9)


def use_temporary_keystore(directory: str) -> None:
    """Point settings at ``directory`` and drop cached settings and keys."""
    from yikatong.crypto.keystore import reset_keyring_cache
    from yikatong.settings import get_settings

    os.environ["YIKATONG_KEYSTORE_PATH"] = directory
    os.environ["YIKATONG_ENV"] = "test"
    os.environ.pop("YIKATONG_MASTER_KEY", None)
    os.environ.pop("YIKATONG_SECRET_KEY", None)
    get_settings.cache_clear()
    reset_keyring_cache()


def measure(seconds: float) -> dict[str, float]:
    """Our figures; the caller has pointed settings at a temporary key store."""
    from yikatong.crypto.fields import blind_index, decrypt_field, encrypt_field
    from yikatong.crypto.keystore import get_keyring
    from yikatong.crypto.sm2 import SM2PrivateKey
    from yikatong.crypto.sm3 import sm3

    get_keyring()  # create the development key ring before timing anything

    private = SM2PrivateKey.generate()
    public = private.public_key()
    # openssl speed signs 20 bytes; a short message keeps the comparison like for like.
    message = b"yikatong-bench-20byt"
    signature = private.sign(message)
    public.verify(signature, message)

    id_number = "441602199001011234"
    blob = encrypt_field("resident.id_number", id_number)
    if decrypt_field("resident.id_number", blob) != id_number:
        raise RuntimeError("field encryption does not round-trip")

    chunk = os.urandom(1 << 20)
    sm3_per_s = rate(lambda: sm3(chunk), seconds, batch=4)

    return {
        "sm2_verify_per_s": rate(lambda: public.verify(signature, message), seconds),
        "sm2_sign_per_s": rate(lambda: private.sign(message), seconds),
        "encrypt_field_per_s": rate(
            lambda: encrypt_field("resident.id_number", id_number), seconds
        ),
        "decrypt_field_per_s": rate(lambda: decrypt_field("resident.id_number", blob), seconds),
        "blind_index_per_s": rate(lambda: blind_index("resident.id_number", id_number), seconds),
        "sm3_mb_per_s": sm3_per_s,  # one 1 MiB buffer per operation
    }


def ratio(ours: float, theirs: float | None) -> float | None:
    return ours / theirs if theirs else None


def render(report: dict[str, Any]) -> str:
    """The human-readable table."""
    ours = report["ours"]
    openssl = report["openssl"]

    def figure(value: float | None) -> str:
        return f"{value:>12,.0f}" if value is not None else f"{'n/a':>12}"

    def percent(value: float | None) -> str:
        return f"{value:>8.1%}" if value is not None else f"{'n/a':>8}"

    lines = [
        f"yikatong crypto benchmark — Python {report['python']}, CPU {report['cpu']}, "
        f"{report['seconds']} s per figure",
        f"reference: {openssl.get('version') or 'openssl unavailable'}",
        "",
        f"{'operation':<28}{'yikatong':>12}{'openssl':>12}{'ratio':>8}",
        "-" * 60,
        f"{'SM2 verify /s':<28}{figure(ours['sm2_verify_per_s'])}"
        f"{figure(openssl['verify_per_s'])}{percent(report['verify_ratio'])}",
        f"{'SM2 sign /s':<28}{figure(ours['sm2_sign_per_s'])}"
        f"{figure(openssl['sign_per_s'])}{percent(report['sign_ratio'])}",
        f"{'encrypt_field (SM4-GCM) /s':<28}{figure(ours['encrypt_field_per_s'])}",
        f"{'decrypt_field (SM4-GCM) /s':<28}{figure(ours['decrypt_field_per_s'])}",
        f"{'blind_index (HMAC-SM3) /s':<28}{figure(ours['blind_index_per_s'])}",
        f"{'SM3 MB/s (1 MiB buffers)':<28}{ours['sm3_mb_per_s']:>12,.1f}",
        "",
    ]
    if report["verify_ratio"] is None:
        lines.append("verify target: not checked (no openssl figure)")
    else:
        verdict = "met" if report["target_met"] else "NOT met"
        lines.append(
            f"verify target ≥ {VERIFY_TARGET:.0%} of openssl: {verdict} "
            f"({report['verify_ratio']:.1%})"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--json", action="store_true", help="print machine-readable results")
    parser.add_argument("--seconds", type=int, default=3, help="duration of each figure (≥ 3)")
    parser.add_argument(
        "--check", action="store_true", help="exit 1 when verification is below the target"
    )
    args = parser.parse_args(argv)
    seconds = max(3, args.seconds)

    cpu = pin_to_one_core()
    openssl = openssl_sm2(seconds)
    with tempfile.TemporaryDirectory(prefix="yikatong-bench-") as directory:
        use_temporary_keystore(directory)
        ours = measure(seconds)

    verify_ratio = ratio(ours["sm2_verify_per_s"], openssl["verify_per_s"])
    report: dict[str, Any] = {
        "python": sys.version.split()[0],
        "cpu": cpu,
        "seconds": seconds,
        "openssl": openssl,
        "ours": ours,
        "verify_ratio": verify_ratio,
        "sign_ratio": ratio(ours["sm2_sign_per_s"], openssl["sign_per_s"]),
        "verify_target": VERIFY_TARGET,
        "target_met": None if verify_ratio is None else verify_ratio >= VERIFY_TARGET,
    }
    print(json.dumps(report, indent=2) if args.json else render(report))
    return 1 if args.check and report["target_met"] is False else 0


if __name__ == "__main__":
    sys.exit(main())
