"""`yikatong staff`: staff accounts (create, list, unlock, one-time codes)."""

from __future__ import annotations

import typer
from rich.table import Table

from yikatong.cli.common import console, domain_errors
from yikatong.kit.actor import Role

app = typer.Typer(help="Staff accounts (工作人员账号).", no_args_is_help=True)


@app.command()
def create(
    username: str = typer.Argument(..., help="Login name: lower-case letters, digits, . _ -"),
    display_name: str = typer.Option(..., "--name", help="Name shown in the console"),
    role: Role = typer.Option(..., help="platform_admin, counter_clerk, department_admin, ..."),
    region: str = typer.Option("441600", help="GB/T 2260 code the account is scoped to"),
    department: str | None = typer.Option(None, help="Department (e.g. 市人社局)"),
    password: str = typer.Option(
        ...,
        prompt=True,
        hide_input=True,
        confirmation_prompt=True,
        help="At least 10 characters with letters and digits (prompted when omitted)",
    ),
    show_qr: bool = typer.Option(True, help="Print the TOTP enrolment QR code"),
) -> None:
    """Create a staff account and print its TOTP enrolment (shown once)."""
    import segno

    from yikatong.db import job
    from yikatong.kit.actor import Actor
    from yikatong.staff import service

    with domain_errors(), job() as session:
        created = service.create_staff(
            session,
            Actor.system("cli:staff create"),
            username=username,
            display_name=display_name,
            role=role,
            region_code=region,
            password=password,
            department=department,
        )
        uri = service.totp_uri(created.member)
    console.print(f"created [bold]{created.member.username}[/bold] ({role.value}, {region})")
    console.print(
        f"TOTP secret (enrol in an authenticator app): [bold]{created.totp_secret}[/bold]"
    )
    console.print(uri)
    if show_qr:
        segno.make(uri, error="m").terminal(compact=True)


@app.command("list")
def list_(region: str = typer.Option("000000", help="Only accounts inside this region")) -> None:
    """List staff accounts."""
    from yikatong.db import job
    from yikatong.kit.actor import Actor
    from yikatong.staff import service

    table = Table("username", "name", "role", "region", "active", "locked until", "last login")
    with domain_errors(), job() as session:
        actor = Actor.system("cli:staff list", region_code=region)
        page = service.list_staff(session, actor, per_page=200)
        for m in page.items:
            table.add_row(
                m.username,
                m.display_name,
                m.role,
                m.region_code,
                "yes" if m.is_active else "no",
                m.locked_until.isoformat(timespec="minutes") if m.locked_until else "",
                m.last_login_at.isoformat(timespec="minutes") if m.last_login_at else "",
            )
    console.print(table)
    console.print(f"{page.total} account(s)")


@app.command()
def otp(username: str) -> None:
    """Print the TOTP code valid now (for operators who hold the key store; demo logins)."""
    from yikatong.db import job
    from yikatong.kit.actor import Actor
    from yikatong.staff import service

    with domain_errors(), job() as session:
        member = service.get_by_username(session, Actor.system("cli:staff otp"), username)
        console.print(service.current_totp(member))


@app.command()
def unlock(username: str) -> None:
    """Lift a login lockout."""
    from yikatong.db import job
    from yikatong.kit.actor import Actor
    from yikatong.staff import service

    with domain_errors(), job() as session:
        service.unlock(session, Actor.system("cli:staff unlock"), username)
    console.print(f"{username} unlocked")


@app.command()
def disable(username: str) -> None:
    """Disable an account and end its sessions."""
    from yikatong.db import job
    from yikatong.kit.actor import Actor
    from yikatong.staff import service

    with domain_errors(), job() as session:
        service.set_active(session, Actor.system("cli:staff disable"), username, active=False)
    console.print(f"{username} disabled")


@app.command()
def enable(username: str) -> None:
    """Re-enable a disabled account."""
    from yikatong.db import job
    from yikatong.kit.actor import Actor
    from yikatong.staff import service

    with domain_errors(), job() as session:
        service.set_active(session, Actor.system("cli:staff enable"), username, active=True)
    console.print(f"{username} enabled")
