"""Trace queries and export (v2.0): every span of a project as one DuckDB view, and OTLP/HTTP export.

- ``view.py``: the ``spans`` view (OpenTelemetry GenAI column names) over segments and ``traces.duckdb``,
  read while runs write; ``open_spans`` for code that wants the connection (the pattern miner).
- ``query.py``: ``aigentflow traces query``: one read-only statement, refused otherwise.
- ``otlp.py``: spans as an OTLP ``ExportTraceServiceRequest``, sent over HTTP (``traces export``).
- ``cli.py``: the ``aigentflow traces`` commands (registered through the ``aigentflow.commands`` entry point).
"""
