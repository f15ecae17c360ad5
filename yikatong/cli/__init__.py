"""The `yikatong` command: one Typer app, one module per domain's commands."""

from __future__ import annotations

import typer

import yikatong.models  # noqa: F401 - every table and event handler registered
from yikatong.cli import audit, cards, db, demo, ecard, keys, residents, serve, staff

app = typer.Typer(
    name="yikatong",
    help="Operate the social security card one-card platform (社会保障卡一卡通).",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)
app.add_typer(db.app, name="db")
app.add_typer(demo.app, name="demo")
app.add_typer(staff.app, name="staff")
app.add_typer(audit.app, name="audit")
app.add_typer(cards.app, name="cards")
app.add_typer(keys.app, name="keys")
app.add_typer(residents.app, name="residents")
app.add_typer(ecard.app, name="ecard")
app.command("serve")(serve.serve)


def main() -> None:
    app()
