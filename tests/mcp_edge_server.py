"""A small stdio MCP server of our own, for the edge cases a published server never shows.

Run as ``python tests/mcp_edge_server.py`` (stdio), ``... --http PORT`` (Streamable HTTP on
127.0.0.1), ``... --exit-at-start CODE`` (writes a line to stderr and exits before any MCP
traffic). Any other arguments are ignored, so a test can tag its processes with a marker.

Tools: ``echo(text)``, ``add(a, b)``, ``fail(message)`` (the tool reports an error), ``crash()``
(the process exits abruptly mid-call), ``hang(ignore_sigterm)`` (never answers, and blocks the
server's own shutdown), ``big(n)`` (n bytes of text), ``env(name)`` (an environment variable or
``<unset>``), ``pid()``, ``image()`` (a tiny PNG, non-text content).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

import anyio.to_thread
from mcp.server.mcpserver import Image, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

# The smallest valid PNG: 1x1, one transparent pixel.
PIXEL_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)


def create_server() -> MCPServer:
    server = MCPServer("aigentflow-edge", version="1.0")

    @server.tool(description="Return the text unchanged.")
    def echo(text: str) -> str:
        return text

    @server.tool(description="The sum of two numbers.")
    def add(a: float, b: float) -> float:
        return a + b

    @server.tool(description="Report a tool error with this message.")
    def fail(message: str) -> str:
        raise ToolError(message)

    @server.tool(description="Exit the server process abruptly, mid-call (exit code 3).")
    def crash() -> str:
        sys.stderr.write("edge server: crashing on purpose\n")
        sys.stderr.flush()
        os._exit(3)

    @server.tool(description="Never answer; with ignore_sigterm, survive SIGTERM too (only SIGKILL ends it).")
    async def hang(ignore_sigterm: bool = False) -> str:
        if ignore_sigterm:
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
        # A thread wait cannot be cancelled: the server cannot even shut down when its stdin closes.
        await anyio.to_thread.run_sync(threading.Event().wait)
        return "unreachable"

    @server.tool(description="The server's working directory.")
    def cwd() -> str:
        return os.getcwd()

    @server.tool(description="n bytes of text.")
    def big(n: int) -> str:
        return "x" * n

    @server.tool(description="The value of an environment variable, or <unset>.")
    def env(name: str) -> str:
        return os.environ.get(name, "<unset>")

    @server.tool(description="The server's process id.")
    def pid() -> int:
        return os.getpid()

    @server.tool(description="A 1x1 PNG image.")
    def image() -> Image:
        return Image(data=PIXEL_PNG, format="png")

    return server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--http", type=int, metavar="PORT", help="serve Streamable HTTP on 127.0.0.1:PORT")
    parser.add_argument("--exit-at-start", type=int, metavar="CODE", help="exit at once with this code")
    options, _ = parser.parse_known_args()
    if options.exit_at_start is not None:
        sys.stderr.write(f"edge server: exiting at start with code {options.exit_at_start}\n")
        sys.exit(options.exit_at_start)
    server = create_server()
    if options.http:
        server.run("streamable-http", host="127.0.0.1", port=options.http)
    else:
        server.run("stdio")


if __name__ == "__main__":
    main()
