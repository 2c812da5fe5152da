"""The v2.0 dashboard: trace capture rate, patterns/week, generated-agent approval, matches/week, overhead.

Trace capture compares what the run store says happened with the spans on disk: every state change
(after CREATE) should have a state or transition span with the same target state, every model call
the audit log records (``model.called``) a ``chat`` span, and every finished run its root span.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from evolution.dashboards.data import ProjectData, parse_time
from evolution.dashboards.figure import Figure, Threshold, measured, no_data, percent
from evolution.dashboards.findings import load_findings

PHASE = "v2.0"
CAPTURE = Threshold("==", 1.0, "100%")
PATTERNS = Threshold(">", 10, "> 10/week")
GENERATED_APPROVAL = Threshold(">", 0.50, "> 50%")
MATCHES = Threshold(">", 100, "> 100/week")
OVERHEAD = Threshold("<", 0.10, "< 10%")
TERMINAL = ("COMPLETED", "FAILED", "CANCELLED")


def capture_counts(data: ProjectData) -> dict[str, tuple[int, int]]:
    """(captured, expected) for transitions, model calls and finished runs."""
    counts = data.spans
    state_spans, chat_spans, roots = counts.state_targets, counts.model_calls, counts.roots
    moves: Counter = Counter()
    for run_id, log in data.transitions.items():
        for entry in log:
            if entry.from_state is not None:
                moves[(run_id, entry.to_state)] += 1
    calls = Counter(a.run_id for a in data.audit if a.event == "model.called" and a.run_id)
    finished = {r.id for r in data.runs if r.state in TERMINAL}
    return {
        "transitions": (sum(min(n, state_spans[key]) for key, n in moves.items()), sum(moves.values())),
        "model calls": (sum(min(n, chat_spans[run]) for run, n in calls.items()), sum(calls.values())),
        "finished runs": (len(finished & roots), len(finished)),
    }


def trace_capture(data: ProjectData) -> Figure:
    """Recorded events that have their span."""
    if data.traces_problem:
        return no_data("trace_capture_rate", PHASE, "Trace capture rate", CAPTURE, data.traces_problem)
    counts = capture_counts(data)
    captured = sum(c for c, _ in counts.values())
    expected = sum(e for _, e in counts.values())
    if not expected:
        return no_data("trace_capture_rate", PHASE, "Trace capture rate", CAPTURE, "no run has done anything yet")
    parts = ", ".join(f"{kind} {c}/{e}" for kind, (c, e) in counts.items())
    return measured("trace_capture_rate", PHASE, "Trace capture rate", captured / expected,
                    percent(captured / expected), CAPTURE, f"events with their span: {parts}")


def patterns_per_week(data: ProjectData) -> Figure:
    """Findings the pattern miner first saw in the last 7 days."""
    from evolution.patterns.store import database_path

    if not database_path(data.paths.root).exists():
        return no_data("patterns_per_week", PHASE, "Pattern detection rate", PATTERNS,
                       "the pattern miner has not run on this project (`aigentflow patterns mine`)")
    findings = load_findings(data.paths.root)
    since = data.now - timedelta(days=7)
    recent = [f for f in findings if (parse_time(str(f.get("first_seen") or "")) or since) > since]
    return measured("patterns_per_week", PHASE, "Pattern detection rate", len(recent), f"{len(recent)}/week",
                    PATTERNS, f"findings first seen in the last 7 days, of {len(findings)} stored "
                              "(`aigentflow patterns mine`)")


def generated_agent_approval(data: ProjectData) -> Figure:
    return no_data("generated_agent_approval_rate", PHASE, "Generated agent approval rate", GENERATED_APPROVAL,
                   "no generated agents: agent generation is not built yet")


def matches_per_week(data: ProjectData) -> Figure:
    return no_data("tournament_matches_per_week", PHASE, "Tournament match rate", MATCHES,
                   "no tournament matches: the tournament system is not built yet")


def evolution_overhead(data: ProjectData) -> Figure:
    return no_data("evolution_overhead", PHASE, "Evolution overhead", OVERHEAD,
                   "nothing records the time self-evolution adds to a run yet")


def figures(data: ProjectData) -> list[Figure]:
    return [trace_capture(data), patterns_per_week(data), generated_agent_approval(data), matches_per_week(data),
            evolution_overhead(data)]
