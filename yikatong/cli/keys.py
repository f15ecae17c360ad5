"""`yikatong keys`: the key ring (master key, versioned data keys, rotation)."""

from __future__ import annotations

import typer
from rich.progress import TaskID
from rich.table import Table

from yikatong.cli.common import console, err_console, progress_bar

app = typer.Typer(help="Key ring: SM4 data keys wrapped by the master key.", no_args_is_help=True)


@app.command()
def init(
    force: bool = typer.Option(False, help="Replace an existing key ring (data loss!)"),
) -> None:
    """Create the key ring at YIKATONG_KEYSTORE_PATH under YIKATONG_MASTER_KEY."""
    from yikatong.crypto.errors import KeyStoreError
    from yikatong.crypto.keystore import KeyRing
    from yikatong.settings import get_settings

    try:
        ring = KeyRing.init(get_settings(), force=force)
    except KeyStoreError as exc:
        err_console.print(f"[red]error[/red] {exc}")
        raise typer.Exit(1) from None
    console.print(f"key ring created: data key v{ring.active_version}")


@app.command()
def status() -> None:
    """Show key versions and states (never key material)."""
    from yikatong.crypto.keystore import get_keyring

    info = get_keyring().status()
    console.print(f"master key id: [bold]{info['master_key_id']}[/bold]")
    table = Table("version", "state", "created")
    for key in info["data_keys"]:
        table.add_row(str(key["version"]), key["state"], str(key["created_at"]))
    console.print(table)


@app.command()
def rotate(
    reencrypt: bool = typer.Option(True, help="Re-encrypt stored data under the new key"),
) -> None:
    """Add a new data key, retire the old one; old data stays readable."""
    from yikatong.crypto.keystore import get_keyring

    version = get_keyring().rotate()
    console.print(f"active data key is now v{version}")
    if reencrypt:
        _reencrypt()


@app.command("reencrypt")
def reencrypt_cmd() -> None:
    """Re-encrypt every sensitive field still under a retired data key."""
    _reencrypt()


def _reencrypt() -> None:
    from yikatong.crypto.rotation import reencrypt_all
    from yikatong.db import job

    with job() as session, progress_bar() as bar:
        tasks: dict[str, TaskID] = {}

        def advance(column: str, done: int, total: int) -> None:
            if column not in tasks:
                tasks[column] = bar.add_task(column, total=total)
            bar.update(tasks[column], completed=done)

        changed = reencrypt_all(session, progress=advance)
    console.print(f"re-encrypted {changed} value(s)")


@app.command()
def rewrap(
    new_master_key: str = typer.Option(
        ..., prompt=True, hide_input=True, help="32 hex digits: the new master key"
    ),
) -> None:
    """Rotate the master key: rewrap every data key under NEW_MASTER_KEY."""
    from yikatong.crypto.keystore import get_keyring

    try:
        key = bytes.fromhex(new_master_key)
    except ValueError:
        key = b""
    if len(key) != 16:
        err_console.print("[red]error[/red] the master key must be 32 hex digits")
        raise typer.Exit(1)
    from yikatong.crypto.errors import KeyStoreError

    try:
        get_keyring().rewrap(key)
    except KeyStoreError as exc:
        err_console.print(f"[red]error[/red] {exc}")
        raise typer.Exit(1) from None
    console.print("key ring rewrapped; set YIKATONG_MASTER_KEY to the new key before restarting")
