"""Playing one match: each version of the role does the task on its own fresh copy of the snapshot (the
agent class called in this process, its model the run's: the replay cassette offline), its edits are
applied through the edit guard, the hidden tests are added and run in the sandbox, and the scores
(the share of hidden tests passing) decide: higher wins, equal is a draw.

``play_match`` is a plain function; the runner calls it as a Ray task (one per match)."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aigentflow.models.spec import ModelSpec
from aigentflow.roles.spec import AgentSpec
from aigentflow.run.protocol import AgentCall
from evolution.tournament.tasks import BenchmarkTask

GRADE_TIMEOUT_S = 120.0


class GradingUnavailable(Exception):
    """The task's hidden tests cannot run at all (no runner, no report): no result, not a loss."""


@dataclass(frozen=True)
class MatchPlan:
    tournament_id: str
    number: int
    key: str
    role: str
    task: BenchmarkTask
    spec_a: AgentSpec
    spec_b: AgentSpec


def project_context(task: BenchmarkTask) -> str:
    return (f"Benchmark task {task.id} ({task.language}). The repository is a small {task.language} project; "
            "hidden tests grade the change.")


def agent_call(task: BenchmarkTask, spec: AgentSpec, layers: dict[str, str], model: ModelSpec, run_id: str,
               parent_span_id: str | None = None) -> AgentCall:
    """What the role's agent class gets for ``task``: the same prompt for a recording and a replay."""
    return AgentCall(
        run_id=run_id, step="build", attempt=1, request=task.request, project_context=project_context(task),
        layers=layers, model=model, parent_span_id=parent_span_id, agent_name=spec.name,
        agent_version=spec.version, prompt_layers=spec.role_layers, budget=spec.budget,
        inputs={"task": task.work_item(), "architecture": None, "files": task.files(), "tests": []},
    )


def grade(task: BenchmarkTask, edits: list[dict[str, Any]], limits: dict[str, Any]) -> dict[str, Any]:
    """Apply ``edits`` to a fresh copy of the snapshot, add the hidden tests, run them in the sandbox."""
    from aigentflow.checks.build import run_in_sandbox
    from aigentflow.checks.edits import EditRefused, FileEdit, apply_edits
    from aigentflow.sandbox import SandboxRefused

    with tempfile.TemporaryDirectory(prefix="af-bench-") as scratch:
        root = task.materialize(Path(scratch) / "repo")
        refused = None
        try:
            apply_edits(root, [FileEdit.model_validate(e) for e in edits])
        except (EditRefused, ValueError) as exc:
            refused = str(exc)
        task.add_hidden_tests(root)
        try:
            record = run_in_sandbox(root, task.command(), {"timeout_s": GRADE_TIMEOUT_S, **limits})
        except SandboxRefused as exc:
            raise GradingUnavailable(f"task {task.id}: its grading cannot run: {exc}") from None
    results = record.get("results") or {}
    if results.get("source") != "junit" or not results.get("total"):
        said = (record.get("stderr") or record.get("stdout") or "")[-300:]
        raise GradingUnavailable(f"task {task.id}: `{task.grade_command}` wrote no test report (exit "
                                 f"{record.get('exit_code')}): {said}")
    return {"score": results["passed"] / results["total"], "passed": results["passed"], "total": results["total"],
            "edits_refused": refused, "duration_s": record.get("duration_s"),
            "isolation": record.get("isolation", {}).get("filesystem")}


def play_version(task: BenchmarkTask, spec: AgentSpec, layers: dict[str, str], model: ModelSpec,
                 limits: dict[str, Any], run_id: str, parent_span_id: str | None) -> dict[str, Any]:
    """One version's attempt at ``task``: its output graded; a failed agent call scores 0."""
    from actors import load_class

    started = time.perf_counter()
    agent = load_class(spec.implementation)()
    result = agent.run(agent_call(task, spec, layers, model, run_id, parent_span_id), None)
    played = {"version": spec.version, "cost_usd": result.cost_usd, "model_calls": result.model_calls,
              "input_tokens": result.input_tokens, "output_tokens": result.output_tokens,
              "spans": list(result.spans), "error": result.error}
    if result.ok:
        played.update(grade(task, result.output.get("edits", []), limits))
    else:
        played.update({"score": 0.0, "passed": 0, "total": 0})
    played["seconds"] = time.perf_counter() - started
    return played


def outcome_of(score_a: float, score_b: float) -> str:
    if abs(score_a - score_b) < 1e-9:
        return "draw"
    return "a" if score_a > score_b else "b"


def play_match(plan: MatchPlan, layers: dict[str, str], model: ModelSpec, limits: dict[str, Any]) -> dict[str, Any]:
    """Both versions on the plan's task; the match record (key, scores, outcome, details, spans)."""
    from evolution.tournament.spans import match_span

    started_ns = time.time_ns()
    span_id = match_span_id(plan)
    try:
        a = play_version(plan.task, plan.spec_a, layers, model, limits, plan.tournament_id, span_id)
        b = play_version(plan.task, plan.spec_b, layers, model, limits, plan.tournament_id, span_id)
    except GradingUnavailable as exc:
        return {"key": plan.key, "unavailable": str(exc)}
    outcome = outcome_of(a["score"], b["score"])
    record = {
        "key": plan.key, "tournament_id": plan.tournament_id, "number": plan.number, "role": plan.role,
        "task_id": plan.task.id, "version_a": plan.spec_a.version, "version_b": plan.spec_b.version,
        "score_a": a["score"], "score_b": b["score"], "outcome": outcome,
        "details": {side: {k: v for k, v in played.items() if k != "spans"} for side, played in (("a", a), ("b", b))},
    }
    record["spans"] = [match_span(record, span_id, started_ns, time.time_ns()), *a["spans"], *b["spans"]]
    return record


def match_span_id(plan: MatchPlan) -> str:
    import hashlib

    return hashlib.sha256(plan.key.encode()).hexdigest()[:16]
