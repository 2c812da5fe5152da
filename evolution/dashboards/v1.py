"""The v1.0 dashboard: agent success, worktree conflicts/day, build pass rate, test coverage, review approval.

The rates pool every run the store holds and use the definitions `aigentflow status` uses for one
run (``aigentflow.cli.status_cmd.v1_metrics``): a step attempt succeeds when it completes; a build
is a developer's or bug fixer's test run of a task; a review is one review round of a task.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from evolution.dashboards.data import ProjectData, parse_time
from evolution.dashboards.figure import Figure, Threshold, measured, no_data, percent

PHASE = "v1.0"
AGENT_SUCCESS = Threshold(">", 0.95, "> 95%")
CONFLICTS = Threshold("<", 5, "< 5/day")
BUILD_PASS = Threshold(">", 0.90, "> 90%")
COVERAGE = Threshold(">", 80.0, "> 80%")
REVIEW_APPROVAL = Threshold(">", 0.70, "> 70%")


def agent_success(data: ProjectData) -> Figure:
    """Step attempts that completed, of those that finished (completed or failed)."""
    finished = [s for s in data.all_steps() if s.status in ("completed", "failed")]
    if not finished:
        return no_data("agent_success_rate", PHASE, "Agent success rate", AGENT_SUCCESS, "no agent step has finished")
    ok = sum(1 for s in finished if s.status == "completed")
    return measured("agent_success_rate", PHASE, "Agent success rate", ok / len(finished),
                    percent(ok / len(finished)), AGENT_SUCCESS,
                    f"{ok} of {len(finished)} step attempts completed, over {len(data.runs)} runs")


def worktree_conflicts(data: ProjectData) -> Figure:
    """Merge conflicts between task branches (build) and feature -> integration (merge), last 24 hours."""
    since = data.now - timedelta(days=1)
    builds = [s for s in data.all_steps() if s.step.split(".")[0] in ("build", "merge") and s.output is not None]
    if not builds:
        return no_data("worktree_conflicts_per_day", PHASE, "Worktree conflicts/day", CONFLICTS,
                       "no run has built in worktrees yet (flags.agents.backendDev, flags.agents.gitAgent)")
    recent = [s for s in builds if (parse_time(s.finished_at) or data.now) >= since]
    conflicts = sum(len(s.output.get("conflicts") or []) for s in recent)
    resolved = sum(1 for s in recent for c in s.output.get("conflicts") or [] if c.get("resolution") == "resolved")
    return measured("worktree_conflicts_per_day", PHASE, "Worktree conflicts/day", conflicts, f"{conflicts}/day",
                    CONFLICTS, f"last 24 h: {conflicts} conflict(s) in {len(recent)} build/merge step(s), "
                               f"{resolved} resolved by the Merge Conflict Resolver")


def _task_records(data: ProjectData) -> list[dict[str, Any]]:
    tasks = []
    for step in data.all_steps():
        if step.step == "build" and step.output:
            tasks += list((step.output.get("tasks") or {}).values())
    return tasks


def build_pass(data: ProjectData) -> Figure:
    """Test runs of tasks (developer and bug fixer builds; the Tester's red phase is meant to fail) that passed."""
    builds = [t for task in _task_records(data) for t in task.get("steps", []) if t.get("role") != "tester"]
    if not builds:
        return no_data("build_pass_rate", PHASE, "Build pass rate", BUILD_PASS, "no task has been built yet")
    passed = sum(1 for t in builds if t.get("status") == "passed")
    return measured("build_pass_rate", PHASE, "Build pass rate", passed / len(builds), percent(passed / len(builds)),
                    BUILD_PASS, f"{passed} of {len(builds)} task builds passed their tests")


def coverage(data: ProjectData) -> Figure:
    """The whole suite's coverage on the feature branch, as the latest TESTING round measured it."""
    latest = None
    for step in data.all_steps():
        measured_coverage = (step.output or {}).get("coverage") if step.step.split(".")[0] == "test" else None
        if measured_coverage and measured_coverage.get("after") is not None:
            latest = (step, measured_coverage)
    if latest is None:
        return no_data("test_coverage", PHASE, "Test coverage", COVERAGE,
                       "no TESTING step measured coverage (flags.features.coverageTracking)")
    step, cov = latest
    delta = cov.get("delta")
    return measured("test_coverage", PHASE, "Test coverage", float(cov["after"]), f"{cov['after']:g}%", COVERAGE,
                    f"run {step.run_id}, step {step.step}"
                    + (f" ({delta:+g} points on the feature)" if isinstance(delta, int | float) else ""))


def review_approval(data: ProjectData) -> Figure:
    """Review rounds of tasks whose verdict was approve."""
    reviews = [r for task in _task_records(data) for r in task.get("reviews") or []]
    if not reviews:
        return no_data("review_approval_rate", PHASE, "Review approval rate", REVIEW_APPROVAL,
                       "no task has been reviewed yet (flags.agents.reviewer, flags.features.codeReview)")
    approved = sum(1 for r in reviews if r.get("verdict") == "approve")
    return measured("review_approval_rate", PHASE, "Review approval rate", approved / len(reviews),
                    percent(approved / len(reviews)), REVIEW_APPROVAL,
                    f"{approved} of {len(reviews)} review rounds approved")


def figures(data: ProjectData) -> list[Figure]:
    return [agent_success(data), worktree_conflicts(data), build_pass(data), coverage(data), review_approval(data)]
