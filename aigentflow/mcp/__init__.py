"""MCP (Model Context Protocol) servers whose tools agents may use.

- ``config.py``: the ``mcpServers`` JSON files (the project's ``.aigentflow/mcp.json`` over the
  user's ``<user config dir>/mcp.json``), ``${VAR}`` expansion, ``ServerConfig``. Stdlib only.
- ``client.py``: ``McpHub``, a synchronous, thread-safe facade over the official MCP SDK's
  ``Client``: one long-lived session per server on one background event loop, restarted after a
  crash or a timeout; tool calls never raise for server or tool failures.

Nothing is imported here: ``aigentflow.mcp.config`` stays cheap for the CLI, and the SDK is only
loaded by whoever imports ``aigentflow.mcp.client``.
"""
