"""Shared plumbing of CLI commands: the console, error display, progress bars."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from yikatong.errors import YikatongError

console = Console()
err_console = Console(stderr=True)


@contextmanager
def domain_errors() -> Iterator[None]:
    """Print a domain error as one readable line and exit 1, instead of a traceback."""
    try:
        yield
    except YikatongError as exc:
        err_console.print(f"[red]error[/red] {escape(f'[{exc.code}]')} {escape(exc.detail)}")
        for err in exc.extra.get("errors", []):
            err_console.print(f"  {escape(err['field'])}: {escape(err['message'])}")
        raise typer.Exit(1) from None


def progress_bar() -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=False,
    )
