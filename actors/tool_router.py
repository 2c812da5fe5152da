"""The Tool Router: a run's MCP tools, behind the per-role allowlists, each call traced.

One per run (``tools:<run_id>``), on the repository's node (stdio servers run there, in the project's
directory), started only when the project or the user configures MCP servers. It holds one session
per server (``aigentflow.mcp.client.McpHub``: started on first use, closed with the run). Agents ask
it for the tools their role may call (for their prompt) and send it the calls their model asks for;
a call outside the role's list (``tools.<role>``) is refused. Every call, refused or not, returns an
``execute_tool`` span (arguments redacted and cut short, result size, duration, error) that the agent
hands back with its result, so it lands in the run's trace. A server that fails to start, hangs or
errs gives a clear tool error; the run goes on.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aigentflow.tracing.spans import tool_span

if TYPE_CHECKING:
    from aigentflow.config.settings import ToolSettings

ARGUMENTS_SHOWN = 2000
"""Characters of a call's (redacted) arguments kept on its span."""


def tool_allowed(patterns: list[str], tool_id: str) -> bool:
    """``*`` allows every tool, ``server/*`` a server's tools, ``server/tool`` one tool."""
    server = tool_id.split("/", 1)[0]
    return any(p == "*" or p == tool_id or p == f"{server}/*" for p in patterns)


class ToolRouter:
    role = "tool_router"

    def __init__(self, project_root: str, tool_settings: ToolSettings, redactor: Any) -> None:
        from aigentflow.mcp.client import McpHub
        from aigentflow.mcp.config import load_servers

        self.settings = tool_settings
        # stdio servers run in the project's directory unless their entry says otherwise (`cwd`)
        self.servers = {name: replace(config, cwd=config.cwd or project_root) if config.transport == "stdio"
                        else config for name, config in load_servers(Path(project_root)).items()}
        self.hub = McpHub(self.servers)
        # The servers' configured env and header values (tokens, often) join the run's known secrets: a
        # tool that echoes one back never puts it in a prompt or a span.
        from aigentflow.redact import Redactor

        self.redactor = Redactor([*redactor.values, *(v for c in self.servers.values() for v in c.secret_values())],
                                 redactor.extra_patterns)
        self._listed: dict[str, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def ping(self) -> str:
        return self.role

    def _listing(self, server: str) -> dict[str, Any]:
        """A server's tools (listed once per run), or why they could not be listed."""
        with self._lock:
            if server not in self._listed:
                try:
                    tools = self.hub.tools(server)
                    self._listed[server] = {"tools": [{"id": f"{server}/{t.name}", "description": t.description,
                                                       "input_schema": t.input_schema} for t in tools]}
                except Exception as exc:  # noqa: BLE001 (a server that will not start: reported, not fatal)
                    self._listed[server] = {"error": f"{type(exc).__name__}: {str(exc)[:300]}"}
            return self._listed[server]

    def allowed(self, role: str, grants: tuple[str, ...] | list[str] = ()) -> list[str]:
        """``role``'s allowlist (``tools.<role>``) plus ``grants``: the MCP tools named in the
        ``allowed-tools`` of the skills picked for the call (a skill that needs a tool brings it)."""
        return [*self.settings.allowed(role), *grants]

    def catalog(self, role: str, grants: tuple[str, ...] | list[str] = ()) -> dict[str, Any]:
        """The tools ``role`` may call (for its prompt), and the servers that could not be listed."""
        patterns = self.allowed(role, grants)
        tools: list[dict[str, Any]] = []
        problems: list[dict[str, str]] = []
        if not patterns:
            return {"tools": tools, "problems": problems}
        for server in sorted(self.servers):
            if not any(p == "*" or p.split("/", 1)[0] == server for p in patterns):
                continue
            listing = self._listing(server)
            if "error" in listing:
                problems.append({"server": server, "error": listing["error"]})
                continue
            tools += [t for t in listing["tools"] if tool_allowed(patterns, t["id"])]
        return {"tools": tools, "problems": problems}

    def call(self, role: str, tool_id: str, arguments: dict[str, Any], run_id: str, tenant_id: str,
             parent_span_id: str | None, grants: tuple[str, ...] | list[str] = ()) -> dict[str, Any]:
        """Run one call for ``role``: {tool, ok, refused, is_error, error, text, duration_s, size, span}."""
        started = time.time_ns()
        outcome: dict[str, Any] = {"tool": tool_id, "ok": False, "refused": False, "is_error": False, "error": None,
                                   "text": "", "duration_s": 0.0, "size": 0}
        server, _, tool = tool_id.partition("/")
        if not tool_allowed(self.allowed(role, grants), tool_id):
            outcome.update(refused=True, error=f"the {role} may not call {tool_id} (its allowlist, tools.{role}, "
                                               f"is {self.settings.allowed(role) or 'empty'}"
                                               + (f"; its skills grant {list(grants)}" if grants else "") + ")")
        elif server not in self.servers or not tool:
            configured = ", ".join(sorted(self.servers)) or "none"
            outcome["error"] = f"no such tool {tool_id!r}; configured servers: {configured}"
        else:
            result = self.hub.call(server, tool, arguments)  # the server's timeout_s (mcp.json) bounds it
            outcome.update(ok=result.ok and not result.is_error, is_error=result.is_error, error=result.error,
                           text=self.redactor.redact_text(result.text), duration_s=round(result.duration_s, 3),
                           size=result.size)
        shown = json.dumps(self.redactor.redact(arguments), sort_keys=True, default=str)[:ARGUMENTS_SHOWN]
        error = None if outcome["ok"] else \
            self.redactor.redact_text(outcome["error"] or outcome["text"] or "tool error")[:1000]
        outcome["span"] = tool_span(tool_id, run_id=run_id, role=role, arguments=shown, result_bytes=outcome["size"],
                                    refused=outcome["refused"], is_error=outcome["is_error"], start_ns=started,
                                    end_ns=time.time_ns(), parent_id=parent_span_id, tenant_id=tenant_id, error=error)
        return outcome

    def close(self) -> None:
        self.hub.close()
