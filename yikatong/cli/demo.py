"""`yikatong demo`: generate realistic demo data for the configured city."""

from __future__ import annotations

import time

import typer
from rich.table import Table

from yikatong.cli.common import console, domain_errors, progress_bar

app = typer.Typer(help="Demo data (演示数据); refused in production.", no_args_is_help=True)


@app.command()
def seed(
    residents: int = typer.Option(5_000, min=0, help="How many residents to generate"),
    seed: int = typer.Option(441600, help="Random seed: the same seed gives the same city"),
    if_empty: bool = typer.Option(False, "--if-empty", help="Do nothing if residents exist"),
) -> None:
    """Create demo staff logins and COUNT residents shaped like the city's census."""
    from yikatong.db import job
    from yikatong.demo import seed as demo

    with domain_errors(), job() as session:
        if if_empty and not demo.registry_is_empty(session):
            console.print("demo data already present: nothing to do")
            return
        logins = demo.seed_staff(session)
        started = time.perf_counter()
        with progress_bar() as bar:
            task = bar.add_task("generating residents", total=residents)
            demo.seed_residents(
                session,
                residents,
                seed=seed,
                progress=lambda done, _total: bar.update(task, completed=done),
            )
        elapsed = time.perf_counter() - started
    console.print(f"{residents:,} residents in {elapsed:.1f} s")
    if logins:
        table = Table("user name", "role", "region", "password", title="demo logins")
        table.add_column("TOTP secret", overflow="fold", min_width=32)
        for login in logins:
            table.add_row(
                login.staff.username,
                login.staff.role.value,
                login.staff.region_code,
                login.password,
                login.totp_secret,
            )
        console.print(table)
        console.print(
            "Log in at http://127.0.0.1:8000/staff/login . The second factor is the 6-digit code "
            "of an authenticator app enrolled with the TOTP secret, or, on this machine: "
            "[bold].venv/bin/yikatong staff otp admin[/bold]"
        )
