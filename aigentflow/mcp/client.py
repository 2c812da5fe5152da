"""``McpHub``: MCP servers' tools, called synchronously from plain threads.

One hub holds one long-lived session per configured server, started on first use. Every session
lives on one background asyncio event loop (a daemon thread the hub owns), so a Ray actor serving
several threads shares the sessions. The SDK's ``Client`` is an async context manager whose anyio
cancel scopes must be entered and exited by the same task, so each session is a task of its own:
it enters ``Client``, lists the tools, then serves requests from a queue (each in a child task, so
calls to one server run concurrently) until it is retired. Threads reach the loop through
``asyncio.run_coroutine_threadsafe``. The session side is ``aigentflow.mcp.session``.

Failures are results, not exceptions: ``call`` returns ``ToolResult(ok=False, error=...)`` when
the server cannot start, times out, crashes mid-call or answers with a protocol error. A timeout
is enforced three times over (the SDK's read timeout, a cancel scope around the call, and the
waiting thread's own deadline), so a server that never answers cannot hold a caller. After a
crash or a timeout the session is retired: the SDK closes the server's stdin, then terminates its
process group (SIGTERM, then SIGKILL); the next call starts a fresh one.

stdio servers get a minimal environment (``BASE_ENV_NAMES`` from ``base_env``, plus the server's
configured ``env``), never the whole environment: the user's API keys reach a tool server only
when its configuration passes them. Their stderr goes to a file (``log_dir``, else a temporary
file) whose tail, scrubbed of configured secrets, explains a start failure or a crash.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

from aigentflow.exceptions import UsageError
from aigentflow.mcp.config import ServerConfig
from aigentflow.mcp.session import (
    BASE_ENV_NAMES,
    McpServerError,
    Request,
    Session,
    StartFailure,
    ToolInfo,
    ToolResult,
    server_environment,
)

__all__ = ["BASE_ENV_NAMES", "McpHub", "McpServerError", "ToolInfo", "ToolResult", "server_environment"]

logger = logging.getLogger(__name__)

SHUTDOWN_GRACE_S = 10.0
"""How long ``close()`` waits for every session (the SDK's own shutdown of a hung server: about 4 s)."""

class McpHub:
    """Sessions with MCP servers, used synchronously from any number of threads.

    ``servers`` maps names to configurations (``aigentflow.mcp.config.load_servers``). Nothing
    starts until a server is first used. ``close()`` (or leaving a ``with`` block) stops every
    session and its process within a few seconds.
    """

    def __init__(
        self,
        servers: Mapping[str, ServerConfig],
        *,
        base_env: Mapping[str, str] | None = None,
        log_dir: Path | None = None,
    ) -> None:
        self._servers = dict(servers)
        source = os.environ if base_env is None else base_env
        self._base_env = {name: source[name] for name in BASE_ENV_NAMES if name in source}
        self._log_dir = Path(log_dir) if log_dir is not None else None
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._closed = False
        # Loop-thread state: the current session per server, and every session task not yet done.
        self._sessions: dict[str, Session] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    # -- public API ---------------------------------------------------------------------------

    @property
    def servers(self) -> dict[str, ServerConfig]:
        """The configured servers, by name."""
        return dict(self._servers)

    def tools(self, server: str) -> list[ToolInfo]:
        """The tools ``server`` offers (it is started if needed).

        Raises ``UsageError`` for a server that is not configured and ``McpServerError`` when the
        server cannot be started or does not answer.
        """
        config = self._config(server)
        loop = self._ensure_loop()
        future = asyncio.run_coroutine_threadsafe(self._tools(config), loop)
        try:
            return future.result(timeout=config.startup_timeout_s + 10)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise McpServerError(f"MCP server {server!r} did not list its tools within "
                                 f"{config.startup_timeout_s + 10:g} s.") from None
        except concurrent.futures.CancelledError:
            raise McpServerError("the MCP hub was closed while listing tools.") from None
        except StartFailure as exc:
            raise McpServerError(str(exc)) from None

    def call(
        self, server: str, tool: str, arguments: Mapping[str, Any] | None = None, timeout_s: float | None = None
    ) -> ToolResult:
        """Call ``tool`` on ``server``; never raises for a server or tool failure.

        ``timeout_s`` (default: the server's ``timeout_s``) bounds the call itself, not the
        server's start (``startup_timeout_s``). On a timeout or a crash the session is retired and
        the server restarted on the next call.
        """
        started = time.monotonic()

        def failed(message: str) -> ToolResult:
            return ToolResult(server=server, tool=tool, ok=False, error=message,
                              duration_s=round(time.monotonic() - started, 3))

        config = self._servers.get(server)
        if config is None:
            return failed(self._unknown_server_message(server))
        if self._closed:
            return failed("the MCP hub is closed; no more calls can be made through it.")
        timeout = config.timeout_s if timeout_s is None else float(timeout_s)
        if not timeout > 0:
            return failed(f"timeout must be a positive number of seconds, not {timeout_s!r}.")
        if arguments is not None and not isinstance(arguments, Mapping):
            return failed(f"tool arguments must be a JSON object, not {type(arguments).__name__}.")
        try:
            loop = self._ensure_loop()
        except UsageError as exc:
            return failed(str(exc))
        if threading.current_thread() is self._thread:
            raise RuntimeError("McpHub.call() is synchronous: do not call it from the hub's own event loop.")
        future = asyncio.run_coroutine_threadsafe(self._call(config, tool, dict(arguments or {}), timeout), loop)
        deadline = config.startup_timeout_s + timeout + 10  # the last line of defence; the loop times out first
        try:
            outcome = future.result(timeout=deadline)
        except concurrent.futures.TimeoutError:
            future.cancel()
            return failed(f"timed out after {timeout:g} s (no answer from MCP server {server!r}).")
        except concurrent.futures.CancelledError:
            return failed("the MCP hub was closed during the call.")
        except Exception as exc:  # a bug of ours: still a result, as promised
            logger.exception("MCP call %s/%s failed unexpectedly", server, tool)
            return failed(f"internal error calling {server}/{tool}: {type(exc).__name__}: {exc}")
        outcome.duration_s = round(time.monotonic() - started, 3)
        return outcome

    def close(self) -> None:
        """Stop every session and its server process; idempotent. Waits a few seconds at most."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            loop, thread = self._loop, self._thread
        if loop is None or thread is None:
            return
        future = asyncio.run_coroutine_threadsafe(self._shutdown(), loop)
        try:
            future.result(timeout=SHUTDOWN_GRACE_S + 5)
        except Exception:
            logger.warning("MCP sessions did not all shut down cleanly", exc_info=True)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- threads side -------------------------------------------------------------------------

    def _config(self, server: str) -> ServerConfig:
        config = self._servers.get(server)
        if config is None:
            raise UsageError(self._unknown_server_message(server))
        return config

    def _unknown_server_message(self, server: str) -> str:
        known = ", ".join(sorted(self._servers)) or "none"
        return (f"no MCP server named {server!r} is configured (configured: {known}); "
                "see `aigentflow mcp list`.")

    def _ensure_loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._closed:
                raise UsageError("the MCP hub is closed; no more calls can be made through it.")
            if self._loop is None:
                loop = asyncio.new_event_loop()
                started = threading.Event()
                thread = threading.Thread(target=self._run_loop, args=(loop, started), name="aigentflow-mcp",
                                          daemon=True)
                thread.start()
                started.wait()
                self._loop, self._thread = loop, thread
            return self._loop

    @staticmethod
    def _run_loop(loop: asyncio.AbstractEventLoop, started: threading.Event) -> None:
        asyncio.set_event_loop(loop)
        loop.call_soon(started.set)
        try:
            loop.run_forever()
        finally:
            pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.wait(pending, timeout=5))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    # -- loop side ----------------------------------------------------------------------------

    async def _session_for(self, config: ServerConfig) -> tuple[Session, list[ToolInfo]]:
        """The server's live session (started if there is none), once its tools are listed."""
        session = self._sessions.get(config.name)
        if session is None or session.retired:
            session = Session(config, self._base_env, self._log_dir)
            self._sessions[config.name] = session
            task = asyncio.get_running_loop().create_task(session.run(), name=f"mcp-session-{config.name}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        try:
            tools = await asyncio.wait_for(asyncio.shield(session.ready), config.startup_timeout_s + 5)
        except TimeoutError:
            session.retire()
            raise StartFailure(f"MCP server {config.name!r} did not start within "
                                f"{config.startup_timeout_s:g} s (startup_timeout_s).") from None
        return session, tools

    async def _tools(self, config: ServerConfig) -> list[ToolInfo]:
        return (await self._session_for(config))[1]

    async def _call(self, config: ServerConfig, tool: str, arguments: dict[str, Any], timeout: float) -> ToolResult:  # noqa: ASYNC109 - the per-call limit the session enforces on the server, passed on
        def failed(message: str) -> ToolResult:
            return ToolResult(server=config.name, tool=tool, ok=False, error=message)

        try:
            session, tools = await self._session_for(config)
        except StartFailure as exc:
            return failed(str(exc))
        if not any(t.name == tool for t in tools):
            names = ", ".join(sorted(t.name for t in tools)) or "none"
            return failed(f"unknown tool {tool!r} on MCP server {config.name!r} (its tools: {names}).")
        reply: asyncio.Future[ToolResult] = asyncio.get_running_loop().create_future()
        if not session.submit(Request(tool, arguments, timeout, reply)):
            return failed(f"MCP server {config.name!r} stopped just before the call; try again.")
        try:
            return await asyncio.wait_for(asyncio.shield(reply), timeout + 2)
        except TimeoutError:  # the session's own timeout did not fire: it is stuck, retire it
            session.retire()
            return failed(f"timed out after {timeout:g} s (no answer from MCP server {config.name!r}; "
                          "its session was stopped and will restart on the next call).")
        except asyncio.CancelledError:
            if not reply.done():
                reply.cancel()
            raise

    async def _shutdown(self) -> None:
        for session in list(self._sessions.values()):
            session.retire()
        tasks = set(self._tasks)
        if not tasks:
            return
        _, pending = await asyncio.wait(tasks, timeout=SHUTDOWN_GRACE_S)
        for task in pending:  # cannot happen with the SDK's bounded shutdown; belt and braces
            logger.warning("MCP session task %s did not stop in %g s; cancelling it", task.get_name(),
                           SHUTDOWN_GRACE_S)
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=3)
