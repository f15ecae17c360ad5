"""`yikatong ecard`: platform signing keys of the e-card QR code, and the nonce store."""

from __future__ import annotations

import typer
from rich.table import Table

from yikatong.cli.common import console, err_console

app = typer.Typer(help="Electronic card: QR code signing keys, nonce store.", no_args_is_help=True)


@app.command()
def keys() -> None:
    """List the platform signing keys: versions, dates, state, fingerprints (no secrets)."""
    from yikatong.crypto.keystore import get_keyring
    from yikatong.db import utcnow
    from yikatong.ecard.service import published_keys

    now = utcnow()
    published = {key.key_id: key for key in published_keys(now)}
    table = Table("key id", "state", "signs from", "retired", "published until", "fingerprint")
    for key in get_keyring().signing_keys:
        shown = published.get(key.version)
        if shown is None:
            until = "-"
        elif shown.valid_until is None:
            until = "(in force)"
        else:
            until = shown.valid_until.isoformat(timespec="seconds")
        table.add_row(
            str(key.version),
            key.state(now),
            key.not_before.isoformat(timespec="seconds"),
            key.retired_at.isoformat(timespec="seconds") if key.retired_at else "-",
            until,
            key.public_key.fingerprint()[:16],
        )
    console.print(table)


@app.command("rotate-key")
def rotate_key(
    activate_in: float = typer.Option(
        24.0,
        min=0.0,
        help="Hours until the new key starts signing; offline terminals fetch it meanwhile",
    ),
) -> None:
    """Add a new platform signing key; the old one keeps verifying what it signed."""
    import datetime as dt

    from yikatong.crypto.errors import KeyStoreError
    from yikatong.crypto.keystore import get_keyring
    from yikatong.db import utcnow

    ring = get_keyring()
    not_before = utcnow() + dt.timedelta(hours=activate_in)
    try:
        version = ring.rotate_signing_key(not_before)
    except KeyStoreError as exc:
        err_console.print(f"[red]error[/red] {exc}")
        raise typer.Exit(1) from None
    key = next(k for k in ring.signing_keys if k.version == version)
    console.print(
        f"signing key v{version} added; it signs from {key.not_before.isoformat()} "
        f"(fingerprint {key.public_key.fingerprint()[:16]})"
    )
    console.print("restart the application workers before then so that they all hold it")


@app.command("revoke-key")
def revoke_key(version: int = typer.Argument(..., help="The key id to withdraw")) -> None:
    """Withdraw a retired or pending signing key at once (compromise, cancelled rotation)."""
    from yikatong.crypto.errors import KeyStoreError
    from yikatong.crypto.keystore import get_keyring

    try:
        get_keyring().revoke_signing_key(version)
    except KeyStoreError as exc:
        err_console.print(f"[red]error[/red] {exc}")
        raise typer.Exit(1) from None
    console.print(f"signing key v{version} revoked: no longer published or accepted")


@app.command("prune-nonces")
def prune_nonces() -> None:
    """Forget the nonces of QR codes that have expired (online verification also does this)."""
    from yikatong.db import job
    from yikatong.ecard.service import prune_nonces as prune

    with job() as session:
        removed = prune(session)
    console.print(f"removed {removed} expired nonce(s)")
