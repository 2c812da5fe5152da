"""What the pages show, as plain data: the runs table, a run's waterfall, a span's details.

Read-only: the store is opened ``readonly=True`` for each page, the spans come through
``aigentflow.tracing.reader`` (no lock that blocks a writer), so pages follow runs that are writing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from aigentflow.project.paths import ProjectPaths
from aigentflow.tracing.spans import COST_USD, INPUT_TOKENS, OUTPUT_TOKENS
from evolution.dashboards.data import parse_time

TERMINAL = ("COMPLETED", "FAILED", "CANCELLED")
MIN_BAR_PERCENT = 0.4
"""The narrowest bar drawn: an instant (a transition) still shows as a tick."""


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|[\x00-\x08\x0b-\x1f\x7f]")


def plain_text(text: object) -> str:
    """Text as a page shows it: terminal colour codes (Ray's tracebacks have them) and control characters removed."""
    return ANSI.sub("", "" if text is None else str(text))


class NotFound(LookupError):
    """A run or span the URL names is not in the project: the page says so (404)."""


def open_store(paths: ProjectPaths) -> Any:
    from aigentflow.store.sqlite import SQLiteRunStore

    return SQLiteRunStore(paths.database, readonly=True)


def emergency_switches(paths: ProjectPaths) -> list[dict[str, str]]:
    """The emergency switches that are on (``aigentflow admin emergency``), for the banner every page shows:
    {"key", "text"} each; none when the store cannot be read (the pages say why elsewhere)."""
    from aigentflow import emergency
    from aigentflow.exceptions import AigentflowError

    try:
        store = open_store(paths)
    except AigentflowError:
        return []
    try:
        state = emergency.read(store, paths.state_dir)
    finally:
        store.close()
    keys = [key for key in emergency.SWITCHES if state.get(key)]
    return [{"key": key, "text": text} for key, text in zip(keys, emergency.describe(state, only_on=True),
                                                             strict=True)]


def duration_text(seconds: float | None) -> str:
    """1.234 -> "1.23 s", 95 -> "1 min 35 s", None -> "-"."""
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms" if seconds >= 0.001 else f"{seconds * 1000:.2f} ms"
    if seconds < 60:
        return f"{seconds:.2f} s"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


def run_row(store: Any, run: Any, now: datetime | None = None) -> dict[str, Any]:
    """One row of the runs table: what `aigentflow runs` shows, with the run's duration."""
    from aigentflow.cli.status_cmd import replay_of

    done = [s for s in store.steps(run.id) if s.status == "completed"]
    start = parse_time(run.created_at)
    end = parse_time(run.finished_at) or (parse_time(run.updated_at) if run.state in TERMINAL else None)
    running = end is None
    end = end or now or datetime.now(UTC)
    replay = replay_of(run)
    return {
        "id": run.id, "state": run.state, "model": run.model, "request": run.request,
        "created": run.created_at[:19].replace("T", " "),
        "tokens_in": sum(s.input_tokens for s in done), "tokens_out": sum(s.output_tokens for s in done),
        "cost_usd": round(sum(s.cost_usd for s in done), 6),
        "duration": duration_text((end - start).total_seconds() if start else None) + (" so far" if running else ""),
        "error": run.error, "lenient": bool(replay and replay["lenient"]), "replay": replay,
        "steps": len(done),
    }


def runs_table(paths: ProjectPaths, limit: int = 200) -> list[dict[str, Any]]:
    store = open_store(paths)
    try:
        return [run_row(store, run) for run in store.list_runs(limit=limit)]
    finally:
        store.close()


def find_run(paths: ProjectPaths, run_id: str) -> dict[str, Any]:
    """The runs-table row of the run ``run_id`` names (a unique prefix will do); ``NotFound`` if none."""
    from aigentflow.exceptions import UnknownRun

    store = open_store(paths)
    try:
        try:
            full = store.resolve_run_id(run_id)
        except UnknownRun as exc:
            raise NotFound(f"no run {run_id!r} in {paths.root}: {exc}") from None
        return run_row(store, store.get_run(full))
    finally:
        store.close()


@dataclass(frozen=True)
class Bar:
    """One span of the waterfall: its row (depth), where its bar starts and how wide it is (% of the run)."""

    span: dict[str, Any]
    depth: int
    left: float
    width: float
    duration: str
    tokens: str
    cost: str
    error: bool


def run_spans(paths: ProjectPaths, run_id: str) -> list[dict[str, Any]]:
    from aigentflow.tracing.reader import read_spans

    if not paths.traces_dir.exists():
        return []
    return read_spans(paths.traces_dir, run_id)


def waterfall(spans: list[dict[str, Any]]) -> tuple[list[Bar], dict[str, Any]]:
    """The span tree in depth-first order, each span a bar placed by its start and duration, and the totals."""
    from aigentflow.tracing.reader import span_tree, summarize

    if not spans:
        return [], summarize([])
    t0 = min(s["start_ns"] for s in spans)
    total = max(max(s["end_ns"] for s in spans) - t0, 1)
    bars: list[Bar] = []

    def visit(node: Any, depth: int) -> None:
        span = node["span"]
        length = max(0, span["end_ns"] - span["start_ns"])
        left = 100 * (span["start_ns"] - t0) / total
        width = min(max(100 * length / total, MIN_BAR_PERCENT), 100 - left) if left < 100 else MIN_BAR_PERCENT
        bars.append(Bar(span=span, depth=depth, left=round(min(left, 100 - MIN_BAR_PERCENT), 3),
                        width=round(width, 3), duration=duration_text(length / 1e9), tokens=tokens_text(span),
                        cost=cost_text(span), error=span["status"] == "error"))
        for child in node["children"]:
            visit(child, depth + 1)

    for root in span_tree(spans):
        visit(root, 0)
    return bars, summarize(spans)


def tokens_text(span: dict[str, Any]) -> str:
    attributes = span["attributes"]
    if INPUT_TOKENS not in attributes and OUTPUT_TOKENS not in attributes:
        return ""
    return f"{attributes.get(INPUT_TOKENS, 0)} in / {attributes.get(OUTPUT_TOKENS, 0)} out"


def cost_text(span: dict[str, Any]) -> str:
    cost = span["attributes"].get(COST_USD)
    return f"${cost:.4f}" if isinstance(cost, int | float) and not isinstance(cost, bool) else ""


def span_details(paths: ProjectPaths, run_id: str, span_id: str) -> dict[str, Any]:
    """One span with its attributes, redacted again for display (spans are redacted when written; a
    secret of this process's environment is hidden too). ``NotFound`` if the run has no such span."""
    from aigentflow.redact import Redactor

    spans = run_spans(paths, run_id)
    span = next((s for s in spans if s["span_id"] == span_id), None)
    if span is None:
        raise NotFound(f"run {run_id} has no span {span_id!r}")
    redactor = Redactor.from_environment()
    parent = next((s for s in spans if s["span_id"] == span["parent_id"]), None)
    children = [s for s in spans if s["parent_id"] == span_id]
    attributes = sorted((str(k), v) for k, v in redactor.redact(dict(span["attributes"])).items())
    return {
        "span": {**span, "error": redactor.redact(span["error"]) if span["error"] else None},
        "attributes": attributes,
        "duration": duration_text(max(0, span["end_ns"] - span["start_ns"]) / 1e9),
        "started": datetime.fromtimestamp(span["start_ns"] / 1e9, UTC).isoformat(timespec="milliseconds"),
        "parent": parent, "children": children,
    }
