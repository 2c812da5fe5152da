"""The spans of a tournament: one ``tournament_match <role>`` span per match (its agents' spans under
it), all with the tournament's id as their ``run_id``, written by the owner with ``SegmentWriter`` into
the project's traces, so `aigentflow traces query` sees them beside the runs'."""

from __future__ import annotations

from typing import Any

from aigentflow.tracing.spans import Span, make_span

KIND = "tournament"


def match_span(record: dict[str, Any], span_id: str, start_ns: int, end_ns: int) -> Span:
    return make_span(
        f"tournament_match {record['role']}", KIND, run_id=record["tournament_id"], span_id=span_id,
        start_ns=start_ns, end_ns=end_ns,
        attributes={
            "aigentflow.tournament.id": record["tournament_id"], "aigentflow.tournament.match": record["key"],
            "aigentflow.tournament.task": record["task_id"], "gen_ai.agent.name": record["role"],
            "aigentflow.tournament.version_a": record["version_a"],
            "aigentflow.tournament.version_b": record["version_b"],
            "aigentflow.tournament.score_a": float(record["score_a"]),
            "aigentflow.tournament.score_b": float(record["score_b"]),
            "aigentflow.tournament.outcome": record["outcome"],
        },
    )
