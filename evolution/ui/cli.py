"""`aigentflow ui [--port N] [--no-open]`: serve the project's web UI on 127.0.0.1 (no Ray, no litellm)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Annotated

import typer

from aigentflow.cli.common import reports_errors

HOST = "127.0.0.1"
"""Loopback only: the UI shows the project's runs and traces to whoever can reach it."""
DEFAULT_PORT = 8765


def reserve(port: int) -> socket.socket:
    """A socket bound to ``HOST:port`` (0: a free port), handed to the server so no one takes it meanwhile;
    ``UsageError`` (exit 2) when the port is in use or not a port."""
    from aigentflow.exceptions import UsageError

    if not 0 <= port <= 65535:
        raise UsageError(f"--port {port} is not a TCP port (0-65535; 0 picks a free one).")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind((HOST, port))
    except OSError as exc:
        sock.close()
        raise UsageError(f"port {port} on {HOST} is in use ({exc.strerror}); pick another with --port N, "
                         "or --port 0 for a free one.") from None
    sock.listen(128)
    return sock


@reports_errors
def ui(
    port: Annotated[int, typer.Option("--port", help="Port on 127.0.0.1 (0: a free one).")] = DEFAULT_PORT,
    no_open: Annotated[bool, typer.Option("--no-open", help="Do not open a browser.")] = False,
    project: Annotated[Path | None, typer.Option("--project", help="The project (default: the working directory).")]
    = None,
) -> None:
    """A local web UI: runs, each run's spans as a waterfall, span details, health dashboards, findings."""
    from evolution.dashboards.data import project_paths

    paths = project_paths(project)
    sock = reserve(port)
    url = f"http://{HOST}:{sock.getsockname()[1]}/"

    import uvicorn

    from evolution.ui.app import create_app

    config = uvicorn.Config(create_app(paths), log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    typer.echo(f"aigentflow ui for {paths.root}: {url} (Ctrl-C stops it)", err=False)
    if not no_open:
        _open_when_up(server, url)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()


def _open_when_up(server: object, url: str) -> None:
    """Open the browser once the server has started (a thread; the server runs in this one)."""
    import threading
    import time
    import webbrowser

    def wait_and_open() -> None:
        for _ in range(100):
            if getattr(server, "started", False):
                webbrowser.open(url)
                return
            time.sleep(0.1)

    threading.Thread(target=wait_and_open, daemon=True).start()
