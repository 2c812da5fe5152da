"""``aigentflow mcp``: the MCP servers configured for agents, inspected and tried by hand.

Servers come from the project's ``.aigentflow/mcp.json`` over the user's ``<config dir>/mcp.json``
(``aigentflow.mcp.config``). ``list`` reads the files only; ``tools`` and ``call`` start the server
through ``aigentflow.mcp.client`` (the MCP SDK is imported there, inside the command). Environment
and header values are never printed: they are often secrets.

Exit codes: 0 done; 1 the server failed or the tool reported an error; 2 bad input (unknown
server or tool, invalid ``--args``, invalid configuration).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from aigentflow.cli.common import error, print_json, reports_errors

if TYPE_CHECKING:
    from aigentflow.mcp.client import ToolInfo, ToolResult
    from aigentflow.mcp.config import ServerConfig

app = typer.Typer(help="MCP servers (mcpServers JSON): list them, list their tools, call one.", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
ServerArgument = Annotated[str, typer.Argument(help="The server's name in mcp.json (see `aigentflow mcp list`).")]


def _project_root() -> Path | None:
    """The git work tree around the working directory, if any: its ``.aigentflow/mcp.json`` counts."""
    from aigentflow.project.paths import find_git_root

    return find_git_root(Path.cwd())


def _server(name: str) -> ServerConfig:
    from aigentflow.mcp.config import load_server

    return load_server(name, _project_root())


@app.command("list")
@reports_errors
def list_command(json_out: JsonOption = False) -> None:
    """The configured servers: name, transport, what each runs or its URL, and where it is configured."""
    from aigentflow.exceptions import UsageError
    from aigentflow.mcp.config import config_files, load_servers

    root = _project_root()
    servers = load_servers(root, include_disabled=True, expand=False)
    problem = None
    try:
        load_servers(root)  # the ${VAR} expansion a start would do
    except UsageError as exc:
        problem = str(exc)
    files = config_files(root)
    if json_out:
        print_json({
            "servers": [config.to_dict() for _, config in sorted(servers.items())],
            "files": [{"path": str(path), "exists": path.exists()} for path in files],
            "problem": problem,
        })
        return
    if not servers:
        typer.echo("No MCP servers configured. Add them to "
                   + " or ".join(str(path) for path in reversed(files))
                   + ', e.g. {"mcpServers": {"time": {"command": "mcp-server-time"}}}.')
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("server", "transport", "runs / url", "env / headers (names)", "configured in")
    table.columns[0].no_wrap = True
    for column in table.columns[2:]:
        column.overflow = "fold"  # a command line or a path cut short is no use
    for name, config in sorted(servers.items()):
        keys = [*(f"env {k}" for k in sorted(config.env)), *(f"header {k}" for k in sorted(config.headers))]
        label = f"{name} (disabled)" if config.disabled else name
        table.add_row(label, config.transport, config.target(), ", ".join(keys) or "-", str(config.source))
    Console().print(table)
    if problem:
        error(problem)


@app.command("tools")
@reports_errors
def tools_command(server: ServerArgument, json_out: JsonOption = False) -> None:
    """Start a server and list its tools (with --json, their input schemas too)."""
    from aigentflow.mcp.client import McpHub

    config = _server(server)
    with McpHub({server: config}) as hub:
        tools = hub.tools(server)
    if json_out:
        print_json([tool.to_dict() for tool in tools])
        return
    if not tools:
        typer.echo(f"MCP server {server!r} offers no tools.")
        return
    from rich.console import Console
    from rich.table import Table

    table = Table("tool", "arguments", "description", title=f"Tools of {server} ({config.describe()})")
    table.columns[0].no_wrap = True
    for tool in tools:
        table.add_row(tool.name, _arguments_line(tool), (tool.description.strip().splitlines() or [""])[0])
    Console().print(table)


@app.command("call")
@reports_errors
def call_command(
    server: ServerArgument,
    tool: Annotated[str, typer.Argument(help="The tool's name (see `aigentflow mcp tools SERVER`).")],
    args_json: Annotated[str | None, typer.Option(
        "--args", help='All arguments as a JSON object: \'{"a": 1}\'.')] = None,
    arg: Annotated[
        list[str] | None,
        typer.Option("--arg", help="One argument as key=value (repeatable); the value is read as JSON unless the "
                                   "tool declares a string, so `n=3` is a number and `text=hi` a string."),
    ] = None,
    timeout: Annotated[float | None, typer.Option("--timeout", min=0.001,
                                                  help="Seconds for the call "
                                                       "(default: the server's timeout_s).")] = None,
    json_out: JsonOption = False,
) -> None:
    """Call one tool and print its result; exit 1 when the tool reports an error or the server fails."""
    from aigentflow.exceptions import UsageError

    arguments = _parse_args_json(args_json)
    pairs = _parse_pairs(arg or [])
    config = _server(server)
    from aigentflow.mcp.client import McpHub

    with McpHub({server: config}) as hub:
        tools = {t.name: t for t in hub.tools(server)}
        if tool not in tools:
            raise UsageError(f"MCP server {server!r} has no tool {tool!r} (its tools: "
                             f"{', '.join(sorted(tools)) or 'none'}).")
        arguments.update(_typed_pairs(pairs, tools[tool]))
        result = hub.call(server, tool, arguments, timeout_s=timeout)
    _print_result(result, json_out)
    if not result.ok:
        raise typer.Exit(1)


def _parse_args_json(text: str | None) -> dict[str, Any]:
    import json

    from aigentflow.exceptions import UsageError

    if text is None:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"--args is not valid JSON: {exc.msg} at column {exc.colno}. "
                         'Give an object, e.g. --args \'{"text": "hi"}\'.') from None
    if not isinstance(value, dict):
        raise UsageError(f"--args must be a JSON object of arguments, not {type(value).__name__}: "
                         'e.g. --args \'{"text": "hi"}\'.')
    return value


def _parse_pairs(items: list[str]) -> list[tuple[str, str]]:
    from aigentflow.exceptions import UsageError

    pairs = []
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"--arg {item!r} is not key=value; e.g. --arg text=hi --arg n=3.")
        pairs.append((key, value))
    return pairs


def _typed_pairs(pairs: list[tuple[str, str]], tool: ToolInfo) -> dict[str, Any]:
    """``--arg`` values: strings where the tool's schema declares a string, JSON values otherwise."""
    import json

    properties = tool.input_schema.get("properties") or {}
    typed: dict[str, Any] = {}
    for key, raw in pairs:
        declared = (properties.get(key) or {}).get("type")
        if declared == "string" or (isinstance(declared, list) and "string" in declared):
            typed[key] = raw
            continue
        try:
            typed[key] = json.loads(raw)
        except json.JSONDecodeError:
            typed[key] = raw
    return typed


def _arguments_line(tool: ToolInfo) -> str:
    properties = tool.input_schema.get("properties") or {}
    required = set(tool.input_schema.get("required") or [])
    parts = []
    for name, schema in properties.items():
        kind = schema.get("type", "any") if isinstance(schema, dict) else "any"
        parts.append(f"{name}{'' if name in required else '?'}: {kind if isinstance(kind, str) else '|'.join(kind)}")
    return ", ".join(parts) or "-"


def _print_result(result: ToolResult, json_out: bool) -> None:
    if json_out:
        print_json(result.to_dict())
        return
    if result.error is not None:
        error(result.error)
        return
    if result.is_error:
        error(f"the tool {result.server}/{result.tool} reported an error: {result.text}")
        return
    if result.text:
        typer.echo(result.text)
    elif result.structured is not None:
        print_json(result.structured)
