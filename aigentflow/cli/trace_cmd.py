"""``aigentflow trace RUN_ID``: the span tree of a run, readable while the run is still writing."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer

from aigentflow.cli.common import print_json, reports_errors

if TYPE_CHECKING:
    from rich.text import Text
    from rich.tree import Tree

    from aigentflow.tracing.reader import SpanNode


@reports_errors
def trace(
    run_id: str = typer.Argument(..., help="The run whose spans to show (see `aigentflow runs`)."),
    json_out: bool = typer.Option(False, "--json", help="Print the spans and a summary as JSON."),
) -> None:
    """Show every state, agent call and model call of a run as a tree, with time, tokens, cost."""
    from aigentflow.exceptions import UsageError
    from aigentflow.project.paths import locate_project
    from aigentflow.tracing.reader import SegmentReader, span_tree, summarize

    paths = locate_project()
    spans = SegmentReader(paths.traces_dir).spans(run_id)
    if not spans:
        raise UsageError(
            f"no spans recorded for run {run_id!r} in {paths.traces_dir}. "
            "Check the run id with `aigentflow runs`."
        )
    summary = summarize(spans)
    if json_out:
        print_json({"run_id": run_id, "summary": summary, "spans": spans})
        return

    from rich.console import Console
    from rich.tree import Tree

    tree = Tree(_summary_label(run_id, summary))
    for node in span_tree(spans):
        _add_node(tree, node)
    Console().print(tree)


def _summary_label(run_id: str, summary: dict[str, Any]) -> Text:
    from rich.text import Text

    label = Text(f"run {run_id}", style="bold")
    label.append(
        f"  {summary['spans']} spans, {summary['duration_ms']:.1f} ms, "
        f"tokens {summary['input_tokens']} in / {summary['output_tokens']} out, "
        f"${summary['cost_usd']:.4f}",
        style="dim",
    )
    if summary["errors"]:
        label.append(f", {summary['errors']} errors", style="red")
    return label


def _add_node(parent: Tree, node: SpanNode) -> None:
    branch = parent.add(_span_label(node["span"]))
    for child in node["children"]:
        _add_node(branch, child)


def _span_label(span: dict[str, Any]) -> Text:
    """One line per span; plain Text, so names like "[REDACTED]" are never read as markup."""
    from rich.text import Text

    from aigentflow.tracing.reader import duration_ms
    from aigentflow.tracing.spans import COST_USD, INPUT_TOKENS, OUTPUT_TOKENS

    failed = span["status"] == "error"
    label = Text(span["name"], style="bold red" if failed else "bold")
    label.append(f"  {duration_ms(span):.1f} ms", style="cyan")
    attributes = span["attributes"]
    if INPUT_TOKENS in attributes or OUTPUT_TOKENS in attributes:
        tokens_in = attributes.get(INPUT_TOKENS, 0)
        tokens_out = attributes.get(OUTPUT_TOKENS, 0)
        label.append(f"  tokens {tokens_in} in / {tokens_out} out", style="green")
    if isinstance(attributes.get(COST_USD), int | float):
        label.append(f"  ${attributes[COST_USD]:.4f}", style="yellow")
    if failed:
        label.append(f"  error: {span['error'] or 'unknown'}", style="red")
    return label
