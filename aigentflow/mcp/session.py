"""One MCP server's session, and what calls give back: the part of the hub (``aigentflow.mcp.client``)
that runs on its event loop.

A ``Session`` is a task that enters the SDK's ``Client`` (stdio or Streamable HTTP), lists the
server's tools, then serves queued calls (each in a child task) until it is retired; its start
failures, timeouts and crashes become ``ToolResult``s with a clear error, its stderr goes to a file
whose tail (scrubbed of configured secrets) explains them. ``ToolInfo``, ``ToolResult`` and
``server_environment`` are the hub's public types, re-exported there.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import os
import shlex
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO, Any

import anyio
from mcp import Client, Implementation, StdioServerParameters, stdio_client
from mcp.client.streamable_http import create_mcp_http_client, streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp_types import CONNECTION_CLOSED, REQUEST_TIMEOUT, CallToolResult

from aigentflow import __version__
from aigentflow.exceptions import AigentflowError
from aigentflow.mcp.config import ServerConfig

logger = logging.getLogger(__name__)

BASE_ENV_NAMES = (
    "PATH", "HOME", "USER", "LOGNAME", "SHELL", "TERM", "LANG", "LC_ALL", "LC_CTYPE", "TMPDIR", "TZ",
    # Windows basics, absent elsewhere
    "SYSTEMROOT", "SYSTEMDRIVE", "WINDIR", "COMSPEC", "PATHEXT", "TEMP", "TMP", "USERPROFILE",
    "HOMEDRIVE", "HOMEPATH", "APPDATA", "LOCALAPPDATA", "PROGRAMDATA", "PROGRAMFILES",
)  # fmt: skip
"""What a stdio server inherits from ``base_env``; anything else must be in its ``env``."""

_STDERR_TAIL_BYTES = 800
_MAX_TOOL_PAGES = 100


class McpServerError(AigentflowError):
    """An MCP server could not be used (did not start, crashed, broke the protocol)."""


@dataclass(frozen=True)
class ToolInfo:
    """One tool a server offers; ``input_schema`` is its JSON Schema for the arguments."""

    server: str
    name: str
    description: str
    input_schema: dict[str, Any]

    @property
    def id(self) -> str:
        """The tool's id across servers: ``server/tool``."""
        return f"{self.server}/{self.name}"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "id": self.id}


@dataclass
class ToolResult:
    """The outcome of one tool call. ``ok``: the call completed and the tool did not report an error.

    ``is_error``: the tool ran and reported an error (its message is in ``text``). ``error``: why the
    call failed without a result (the server did not start, timed out, crashed, broke the protocol,
    the tool is unknown); None when the server answered. ``text`` joins the text content (other
    content summarised, e.g. ``[image/png, 1234 bytes]``); ``size`` is its length in UTF-8 bytes.
    """

    server: str
    tool: str
    ok: bool
    text: str = ""
    structured: Any = None
    is_error: bool = False
    error: str | None = None
    duration_s: float = 0.0
    size: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def server_environment(config: ServerConfig, base_env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment a stdio server is started with: ``BASE_ENV_NAMES`` from ``base_env``
    (default ``os.environ``), then its configured ``env`` over them.

    The SDK's ``stdio_client`` merges this over its own defaults (HOME, LOGNAME, PATH, SHELL, TERM,
    USER from this process), all of which are in ``BASE_ENV_NAMES``: with ``base_env`` given, these
    values win, and nothing outside that list reaches the server unless configured.
    """
    source = os.environ if base_env is None else base_env
    env = {name: source[name] for name in BASE_ENV_NAMES if name in source and not source[name].startswith("()")}
    env.update(config.env)
    return env


class StartFailure(Exception):
    """A server could not be started; the message says why and what to do."""


@dataclass
class Request:
    tool: str
    arguments: dict[str, Any]
    timeout: float
    reply: asyncio.Future[ToolResult]


class Session:
    """One server's session: a task that holds the ``Client`` open and serves queued calls."""

    def __init__(self, config: ServerConfig, base_env: Mapping[str, str], log_dir: Path | None) -> None:
        self.config = config
        self.base_env = base_env
        self.log_dir = log_dir
        self.ready: asyncio.Future[list[ToolInfo]] = asyncio.get_running_loop().create_future()
        self.retired = False
        self._queue: asyncio.Queue[Request | None] = asyncio.Queue()
        self._scope: anyio.CancelScope | None = None
        self._serving = False
        self._startup_expired = False
        self._connection_lost = False
        self._stderr: _StderrLog | None = None

    @property
    def name(self) -> str:
        return self.config.name

    def submit(self, request: Request) -> bool:
        if self.retired:
            return False
        self._queue.put_nowait(request)
        return True

    def retire(self) -> None:
        """Stop taking calls and shut down (in the background): the next call starts a new session."""
        if self.retired:
            return
        self.retired = True
        self._queue.put_nowait(None)
        if not self._serving and self._scope is not None:
            self._scope.cancel()

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        self._scope = anyio.CancelScope()
        timer = loop.call_later(self.config.startup_timeout_s, self._expire_startup)
        failure: BaseException | None = None
        try:
            with self._scope:
                if self.retired:  # retired before it even began
                    self._scope.cancel()
                async with contextlib.AsyncExitStack() as stack:
                    transport = await self._transport(stack)
                    client = await stack.enter_async_context(Client(
                        _watch_eof(transport, self._on_connection_lost),
                        read_timeout_seconds=self.config.startup_timeout_s,  # the handshake; calls pass their own
                        client_info=Implementation(name="aigentflow", version=__version__),
                    ))
                    tools = await self._list_tools(client)
                    timer.cancel()
                    self._serving = True
                    self.ready.set_result(tools)
                    await self._serve(client)
        except Exception as exc:  # noqa: BLE001 - reported through `ready`, or logged
            failure = exc
        finally:
            timer.cancel()
            self.retired = True
            if not self.ready.done():
                self.ready.set_exception(StartFailure(self._start_failure_message(failure)))
                self.ready.exception()  # retrieved: no "never retrieved" warning when nobody waits
            elif failure is not None:
                logger.warning("MCP session with %r ended with %s", self.name, _describe(failure))
            while not self._queue.empty():
                request = self._queue.get_nowait()
                if request is not None and not request.reply.done():
                    request.reply.set_result(self._failed(request, "the session stopped before the call was sent; "
                                                                   "try again."))
            if self._stderr is not None:
                self._stderr.close()

    async def _transport(self, stack: contextlib.AsyncExitStack) -> Any:
        config = self.config
        if config.transport == "http":
            http_client = await stack.enter_async_context(create_mcp_http_client(headers=dict(config.headers) or None))
            return streamable_http_client(config.url or "", http_client=http_client)
        if config.cwd is not None and not Path(config.cwd).is_dir():  # noqa: ASYNC240 - one stat(), once per server start
            where = f" in {config.source}" if config.source else ""
            raise StartFailure(f"cannot start MCP server {self.name!r}: its working directory {config.cwd} "
                                f"does not exist; fix `cwd`{where}.")
        self._stderr = _StderrLog.open(self.name, self.log_dir)
        params = StdioServerParameters(command=config.command or "", args=list(config.args),
                                       env=server_environment(config, self.base_env), cwd=config.cwd)
        return stdio_client(params, errlog=self._stderr.file)  # type: ignore[arg-type]

    async def _list_tools(self, client: Client) -> list[ToolInfo]:
        tools: list[ToolInfo] = []
        cursor: str | None = None
        for _ in range(_MAX_TOOL_PAGES):
            page = await client.list_tools(cursor=cursor)
            for tool in page.tools:
                schema = tool.input_schema
                if hasattr(schema, "model_dump"):
                    schema = schema.model_dump(by_alias=True, exclude_none=True)
                tools.append(ToolInfo(server=self.name, name=tool.name, description=tool.description or "",
                                      input_schema=dict(schema or {})))
            cursor = page.next_cursor
            if not cursor:
                break
        return tools

    async def _serve(self, client: Client) -> None:
        async with anyio.create_task_group() as group:
            while True:
                request = await self._queue.get()
                if request is None:
                    break
                group.start_soon(self._handle, client, request)
            group.cancel_scope.cancel()

    async def _handle(self, client: Client, request: Request) -> None:
        """One call, answered through ``request.reply``; a timeout or a crash retires the session
        (after the reply is set: retiring cancels the calls still in flight)."""
        outcome: ToolResult | None = None
        retire = False
        try:
            with anyio.move_on_after(request.timeout) as scope:
                result = await client.call_tool(request.tool, request.arguments,
                                                read_timeout_seconds=request.timeout)
                outcome = _tool_result(self.name, request.tool, result)
            if scope.cancelled_caught:
                outcome, retire = self._timed_out(request), True
        except MCPError as exc:
            if exc.code == REQUEST_TIMEOUT:
                outcome, retire = self._timed_out(request), True
            elif exc.code == CONNECTION_CLOSED:
                outcome, retire = self._crashed(request), True
            else:
                outcome = self._failed(request, f"protocol error: {self._scrub(exc.message)} (code {exc.code}).")
        except anyio.get_cancelled_exc_class():
            outcome = self._crashed(request) if self._connection_lost else self._failed(
                request, "the session was stopped during the call (the hub was closed, or the server crashed or "
                         "timed out on another call); try again.")
            raise
        except Exception as exc:  # noqa: BLE001 - a malformed answer is a protocol error, reported as such
            outcome = self._failed(request, f"protocol error: {self._scrub(_describe(exc))}.")
        finally:
            if not request.reply.done():
                request.reply.set_result(outcome or self._failed(request, "no result."))
            if retire:
                self.retire()

    def _timed_out(self, request: Request) -> ToolResult:
        return self._failed(request, f"timed out after {request.timeout:g} s; the server was stopped and will "
                                     "restart on the next call.")

    def _crashed(self, request: Request) -> ToolResult:
        return self._failed(request, "the server closed the connection during the call (it crashed or exited); "
                                     "it will be restarted on the next call." + self._stderr_tail())

    def _failed(self, request: Request, message: str) -> ToolResult:
        return ToolResult(server=self.name, tool=request.tool, ok=False, error=f"MCP server {self.name!r}: {message}")

    def _expire_startup(self) -> None:
        """The startup deadline: answer the waiting callers now, then stop the server (which may
        take the SDK a few seconds: stdin closed, a grace period, SIGTERM, SIGKILL)."""
        if not self.ready.done() and self._scope is not None:
            self._startup_expired = True
            self.ready.set_exception(StartFailure(self._start_failure_message(None)))
            self.ready.exception()
            self.retired = True
            self._scope.cancel()

    def _on_connection_lost(self) -> None:
        """The server's side of the connection ended. Serving: retire now, so that the next call
        starts a new session. Starting: the handshake fails on its own, with the real reason."""
        self._connection_lost = True
        if self._serving:
            self.retire()

    def _start_failure_message(self, failure: BaseException | None) -> str:
        config = self.config
        prefix = f"cannot start MCP server {self.name!r}"
        where = f" (configured in {config.source})" if config.source else ""
        leaves = list(_leaf_exceptions(failure)) if failure is not None else []
        for exc in leaves:
            if isinstance(exc, StartFailure):
                return str(exc)
        if self._startup_expired:
            return (f"{prefix}: no MCP handshake within {config.startup_timeout_s:g} s (startup_timeout_s){where}. "
                    "Is it an MCP server, and does it speak MCP on stdout? Raise startup_timeout_s if it is slow "
                    "to start." + self._stderr_tail())
        command = shlex.split(config.target())[0] if config.transport == "stdio" and config.target() else ""
        for exc in leaves:
            if isinstance(exc, FileNotFoundError):
                return (f"{prefix}: command not found: {command!r}{where}. Install it, or give its full path "
                        "in `command`.")
            if isinstance(exc, PermissionError):
                return f"{prefix}: {command!r} is not executable (permission denied){where}."
        telling = [e for e in leaves if not (isinstance(e, MCPError) and e.code == CONNECTION_CLOSED)]
        if config.transport == "http" and telling:
            return (f"{prefix}: cannot connect to {config.target()}: {self._scrub(_describe(telling[0]))}{where}. "
                    "Check the URL, that the server is running, and its `headers`.")
        if self._connection_lost or (leaves and not telling):
            kind = "exited" if config.transport == "stdio" else "closed the connection"
            return f"{prefix}: the server {kind} before completing the MCP handshake{where}." + self._stderr_tail()
        if failure is None:
            return f"{prefix}: the session was stopped before the server was ready."
        return f"{prefix}: {self._scrub(_describe(telling[0] if telling else failure))}{where}." + self._stderr_tail()

    def _stderr_tail(self) -> str:
        if self._stderr is None:
            return ""
        tail = self._scrub(self._stderr.tail()).strip()
        return f"\nLast lines of its stderr:\n{tail}" if tail else ""

    def _scrub(self, text: str) -> str:
        for secret in sorted(self.config.secret_values(), key=len, reverse=True):
            text = text.replace(secret, "[REDACTED]")
        return text


class _StderrLog:
    """Where a stdio server's stderr goes: ``<log_dir>/mcp-<name>.log``, else a temporary file."""

    def __init__(self, file: IO[bytes]) -> None:
        self.file = file
        self.start = os.fstat(file.fileno()).st_size

    @classmethod
    def open(cls, name: str, log_dir: Path | None) -> _StderrLog:
        if log_dir is not None:
            log_dir.mkdir(parents=True, exist_ok=True)
            return cls(open(log_dir / f"mcp-{name}.log", "ab"))
        return cls(tempfile.TemporaryFile(prefix=f"aigentflow-mcp-{name}-"))

    def tail(self, limit: int = _STDERR_TAIL_BYTES) -> str:
        try:
            fd = self.file.fileno()
            end = os.fstat(fd).st_size
            begin = max(self.start, end - limit)
            data = os.pread(fd, end - begin, begin)
        except (OSError, ValueError):
            return ""
        text = data.decode("utf-8", "replace")
        if begin > self.start and "\n" in text:
            text = text.split("\n", 1)[1]  # drop the partial first line
        return text

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.file.close()


@contextlib.asynccontextmanager
async def _watch_eof(transport: Any, on_eof: Callable[[], None]) -> AsyncIterator[tuple[Any, Any]]:
    """The transport's streams, with ``on_eof`` called when the server's side ends.

    The SDK fails calls in flight when the connection closes, but says nothing when a server dies
    between calls; this relay lets the session retire at once, so that the next call restarts it.
    """
    async with transport as (read_stream, write_stream):
        relay_send, relay_receive = anyio.create_memory_object_stream[Any](0)

        async def relay() -> None:
            try:
                async with relay_send:
                    async for item in read_stream:
                        await relay_send.send(item)
            except (anyio.ClosedResourceError, anyio.BrokenResourceError, anyio.EndOfStream):
                pass
            finally:
                on_eof()

        async with anyio.create_task_group() as group:
            group.start_soon(relay)
            try:
                yield relay_receive, write_stream
            finally:
                group.cancel_scope.cancel()
                await relay_receive.aclose()


def _tool_result(server: str, tool: str, result: CallToolResult) -> ToolResult:
    parts = [_content_text(block) for block in result.content]
    text = "\n".join(part for part in parts if part)
    is_error = bool(result.is_error)
    return ToolResult(server=server, tool=tool, ok=not is_error, text=text, structured=result.structured_content,
                      is_error=is_error, size=len(text.encode("utf-8")))


def _content_text(block: Any) -> str:
    """A content block as text: text as is, anything else summarised (``[image/png, 1234 bytes]``)."""
    kind = getattr(block, "type", None)
    if kind == "text":
        return str(block.text)
    if kind in ("image", "audio"):
        return f"[{block.mime_type}, {_decoded_size(block.data)} bytes]"
    if kind == "resource":
        resource = block.resource
        if getattr(resource, "text", None) is not None:
            return str(resource.text)
        mime = getattr(resource, "mime_type", None) or "binary"
        return f"[resource {resource.uri}, {mime}, {_decoded_size(getattr(resource, 'blob', ''))} bytes]"
    if kind == "resource_link":
        return f"[resource link {block.uri}" + (f" ({block.name})" if getattr(block, "name", None) else "") + "]"
    return f"[{kind or type(block).__name__} content]"


def _decoded_size(data: str) -> int:
    try:
        return len(base64.b64decode(data, validate=False))
    except (ValueError, TypeError):
        return len(data) * 3 // 4


def _leaf_exceptions(exc: BaseException) -> Iterator[BaseException]:
    """The exceptions inside (nested) exception groups, outermost first."""
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from _leaf_exceptions(inner)
    else:
        yield exc


def _describe(exc: BaseException) -> str:
    leaves = list(_leaf_exceptions(exc))
    exc = leaves[0] if leaves else exc
    message = str(exc).strip()
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__
