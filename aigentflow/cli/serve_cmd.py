"""`aigentflow serve [--host H] [--port N]`: the project's authenticated HTTP API (``aigentflow.api``).

Serves the project of the working directory with uvicorn. Its access log names the method, the path (no
query string) and the status: never a header, so never a token. Imports no Ray and no litellm: runs are
started as `aigentflow run` processes of their own."""

from __future__ import annotations

import logging
import socket
from typing import Annotated, Any

import typer

from aigentflow.cli.common import reports_errors

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8700


def reserve(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (0: a free port), handed to the server; ``UsageError`` (exit 2)
    when the port is taken or the address is not this machine's."""
    from aigentflow.exceptions import UsageError

    if not 0 <= port <= 65535:
        raise UsageError(f"--port {port} is not a TCP port (0-65535; 0 picks a free one).")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named: asyncio sets TCP_NODELAY only on sockets whose proto says TCP (with proto 0, Nagle
    # and delayed ACKs hold every keep-alive answer back ~40 ms)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    # a server restarted at once must not find its port taken by its last connections (TIME_WAIT); a port
    # another process listens on is still refused
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        if exc.errno == 98:  # EADDRINUSE
            raise UsageError(f"port {port} on {host} is in use ({exc.strerror}); stop what listens there, or pick "
                             "another with --port N (--port 0: a free one).") from None
        raise UsageError(f"cannot listen on {host}:{port} ({exc.strerror}); give --host an address of this "
                         "machine, e.g. 127.0.0.1.") from None
    sock.listen(128)
    return sock


class PathOnly(logging.Filter):
    """Drop the query string from uvicorn's access log lines (``client - "GET /path HTTP/1.1" 200``)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], args[2].split("?", 1)[0], *args[3:])
        return True


def _overrides(sets: list[str] | None) -> dict[str, str]:
    from aigentflow.exceptions import UsageError

    overrides: dict[str, str] = {}
    for item in sets or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set {item!r} is not KEY=VALUE, e.g. --set model.max_calls_per_run=100")
        if key.strip() == "run.tenant":
            raise UsageError("--set run.tenant: each run belongs to the tenant of the token that submits it.")
        overrides[key.strip()] = value
    return overrides


@reports_errors
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on (plain HTTP: keep it on loopback, "
                                                      "or put a TLS proxy in front).")] = DEFAULT_HOST,
    port: Annotated[int, typer.Option("--port", help="Port (0: a free one).")] = DEFAULT_PORT,
    address: Annotated[str | None, typer.Option(
        "--address", help="Ray cluster address the submitted runs use (default: as `aigentflow run`).")] = None,
    sets: Annotated[list[str] | None, typer.Option(
        "--set", "-c", help="A config override for every submitted run: KEY=VALUE (repeatable).")] = None,
    submit_timeout: Annotated[float, typer.Option(
        "--submit-timeout", min=1, help="Seconds POST /v1/runs waits for the run to be recorded.")] = 180.0,
) -> None:
    """Serve the project's HTTP API: submit and follow runs, read steps, audit and costs, per tenant (tokens:
    `aigentflow tokens create TENANT`)."""
    from aigentflow.project.paths import locate_project
    from aigentflow.tenants.tokens import TokenStore

    paths = locate_project()
    overrides = _overrides(sets)
    TokenStore(paths.database).close()  # applies the migrations before the first request reads
    sock = reserve(host, port)
    try:
        _run(paths, sock, host, overrides, address, submit_timeout)
    finally:
        sock.close()


def _run(paths: Any, sock: socket.socket, host: str, overrides: dict[str, str], address: str | None,
         submit_timeout: float) -> None:
    import uvicorn

    from aigentflow.api.app import create_app
    from aigentflow.api.submit import Submitter

    submitter = Submitter(paths, overrides=overrides, address=address, timeout_s=submit_timeout)
    config = uvicorn.Config(create_app(paths, submitter), log_level="info", access_log=True,
                            server_header=False, proxy_headers=False)
    logging.getLogger("uvicorn.access").addFilter(PathOnly())
    bound = sock.getsockname()
    shown = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
    if host not in ("127.0.0.1", "::1", "localhost"):
        typer.echo(f"warning: serving plain HTTP on {host}: tokens cross the network in clear unless a TLS proxy "
                   "is in front.", err=True)
    typer.echo(f"aigentflow API for {paths.root}: http://{shown}:{bound[1]}/v1 "
               f"(OpenAPI: /v1/openapi.json; Ctrl-C stops it)")
    uvicorn.Server(config).run(sockets=[sock])
