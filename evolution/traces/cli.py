"""``aigentflow traces``: query a project's spans with SQL, export a run's spans over OTLP/HTTP.

Thin wiring: find the project, call ``query``/``otlp``, print. Neither command imports Ray or a model
library; both read while runs write.
"""

from __future__ import annotations

from typing import Annotated, Any

import typer

from aigentflow.cli.common import print_json, reports_errors

app = typer.Typer(help="Query a project's spans with SQL; export a run's spans to an OTLP collector.",
                  no_args_is_help=True)


def _trace_dir() -> Any:
    from aigentflow.project.paths import locate_project

    return locate_project().traces_dir


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


@app.command("query")
@reports_errors
def query(
    sql: Annotated[str, typer.Argument(help="One read-only DuckDB statement over the `spans` view.")],
    json_out: Annotated[bool, typer.Option("--json", help="Print the rows as a JSON list of objects.")] = False,
    run_id: Annotated[str | None, typer.Option("--run", help="Only this run's spans are in `spans`.")] = None,
) -> None:
    """Run read-only SQL over every span of the project (one wide view, `spans`, with OpenTelemetry GenAI
    column names: trace_id, span_id, parent_id, run_id, name, kind, start_ns, end_ns, duration_ms, status,
    error, gen_ai_agent_name, gen_ai_request_model, gen_ai_usage_input_tokens, cost_usd, attributes, ...).

    Example: aigentflow traces query "SELECT kind, count(*) AS n FROM spans GROUP BY kind ORDER BY n DESC"
    """
    from evolution.traces.query import check_read_only, run_query

    check_read_only(sql)  # before the project is looked up: a refused statement never touches anything
    result = run_query(_trace_dir(), sql, run_id=run_id)
    if json_out:
        print_json(result.records())
        return
    from aigentflow.cli.plain import echo, table

    echo(table(result.columns, [[_cell(v) for v in row] for row in result.rows],
               flexible=range(len(result.columns))))
    echo(f"({len(result.rows)} row{'s' if len(result.rows) != 1 else ''})")


@app.command("export")
@reports_errors
def export(
    run_id: Annotated[str, typer.Argument(help="The run whose spans to send (see `aigentflow runs`).")],
    otlp: Annotated[str, typer.Option("--otlp", help="The collector's OTLP/HTTP URL, e.g. http://localhost:4318 "
                                                     "(spans go to URL/v1/traces).")],
    header: Annotated[list[str] | None, typer.Option("--header", help="KEY=VALUE added to each request "
                                                                      "(e.g. an Authorization), repeatable.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print what was sent as JSON.")] = False,
) -> None:
    """Send a run's spans to an OpenTelemetry collector (Jaeger, Langfuse, Phoenix, ...) as OTLP/HTTP protobuf."""
    from aigentflow.exceptions import UsageError
    from aigentflow.tracing.reader import read_spans
    from evolution.traces.otlp import endpoint, send

    endpoint(otlp)
    headers = {}
    for item in header or []:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--header {item!r} is not KEY=VALUE; pass e.g. --header 'Authorization=Bearer ...'")
        headers[key.strip()] = value
    trace_dir = _trace_dir()
    spans = read_spans(trace_dir, run_id)
    if not spans:
        raise UsageError(f"no spans recorded for run {run_id!r} in {trace_dir}; check the run id with "
                         "`aigentflow runs`")
    report = send(otlp, spans, headers=headers)
    if json_out:
        print_json({"run_id": run_id, **vars(report)})
        return
    rejected = f", {report.rejected} rejected by the collector" if report.rejected else ""
    skipped = f", {report.skipped} malformed ones skipped" if report.skipped else ""
    typer.echo(f"sent {report.spans} spans of run {run_id} to {report.url} in {report.requests} "
               f"request{'s' if report.requests != 1 else ''}{rejected}{skipped}")
