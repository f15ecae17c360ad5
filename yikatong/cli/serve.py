"""`yikatong serve`: run the web server."""

from __future__ import annotations

import typer


def serve(
    host: str = typer.Option("127.0.0.1", help="Address to listen on"),
    port: int = typer.Option(8000, help="Port to listen on"),
    reload: bool = typer.Option(False, help="Restart on code changes (development)"),
    workers: int = typer.Option(1, help="Worker processes (production, PostgreSQL)"),
) -> None:
    """Serve the platform (API, pages, static files)."""
    import uvicorn

    uvicorn.run(
        "yikatong.app:create_app",
        factory=True,
        host=host,
        port=port,
        reload=reload,
        workers=workers,
        proxy_headers=True,
    )
