"""`yikatong audit`: check the tamper-evident audit chain."""

from __future__ import annotations

import typer

from yikatong.cli.common import console, domain_errors, err_console, progress_bar

app = typer.Typer(help="Audit trail (审计日志).", no_args_is_help=True)


@app.command()
def verify() -> None:
    """Recompute the SM3 hash chain; exit 1 and name each edited, deleted or reordered entry."""
    from yikatong.audit import service
    from yikatong.db import job
    from yikatong.kit.actor import Actor

    with domain_errors(), job() as session, progress_bar() as bar:
        task = bar.add_task("verifying audit chain", total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        report = service.verify_for(session, Actor.system("cli:audit verify"), progress=advance)
    if report.ok:
        console.print(f"[green]audit chain intact[/green]: {report.checked} entries")
        return
    err_console.print(f"[red]audit chain broken[/red]: {len(report.problems)} problem(s)")
    for p in report.problems:
        err_console.print(f"  #{p.entry_id} {p.kind}: {p.message}")
    raise typer.Exit(1)
