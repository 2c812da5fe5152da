"""The MVP dashboard (rollout plan, "Health Dashboards"): system health, error rate, CLI latency p95, crashes."""

from __future__ import annotations

from datetime import timedelta

from evolution.dashboards.data import ProjectData, parse_time
from evolution.dashboards.figure import Figure, Threshold, measured, no_data, percent
from evolution.dashboards.latency import percentile

PHASE = "MVP"
HEALTH = Threshold("up", "up", "up")
ERROR_RATE = Threshold("<", 0.01, "< 1%")
CLI_P95 = Threshold("<", 2.0, "< 2s")
CRASHES = Threshold("<", 1, "< 1/day")

FINISHED = ("COMPLETED", "FAILED", "CANCELLED")
WAITING = ("PAUSED", "AWAITING_APPROVAL")
CRASH_MARK = "agent crashed"
"""What the engine writes in a step's error when the agent's actor died for good (``the <role> agent crashed: ...``)."""


def system_health(data: ProjectData) -> Figure:
    """Up when the store opens and passes SQLite's check, the traces read, and no emergency pause holds runs."""
    problems = [p for p in (data.store_problem, data.traces_problem) if p]
    if data.pause_all:
        problems.append("emergency pause-all is on (`aigentflow admin emergency --resume-all` lifts it)")
    if problems:
        return measured("system_health", PHASE, "System health", "down", "down", HEALTH, "; ".join(problems))
    return measured("system_health", PHASE, "System health", "up", "up", HEALTH,
                    f"state database and traces readable; {len(data.runs)} runs, {data.spans.total} spans")


def error_rate(data: ProjectData) -> Figure:
    """Finished runs that ended FAILED."""
    finished = [r for r in data.runs if r.state in FINISHED]
    if not finished:
        return no_data("error_rate", PHASE, "Error rate", ERROR_RATE, "no finished runs yet")
    failed = sum(1 for r in finished if r.state == "FAILED")
    rate = failed / len(finished)
    return measured("error_rate", PHASE, "Error rate", rate, percent(rate), ERROR_RATE,
                    f"{failed} of {len(finished)} finished runs FAILED")


def cli_latency(samples_ms: list[float] | None) -> Figure:
    """p95 of timed `aigentflow runs` / `status` processes (see ``latency.measure``)."""
    if not samples_ms:
        return no_data("cli_latency_p95", PHASE, "CLI latency p95", CLI_P95,
                       "not measured (measured on request: it starts the CLI a few times)")
    p95 = percentile(samples_ms, 95)
    return measured("cli_latency_p95", PHASE, "CLI latency p95", round(p95 / 1000, 3), f"{p95 / 1000:.2f} s",
                    CLI_P95, f"p95 of {len(samples_ms)} timed `aigentflow runs`/`status` processes in this project")


def crashes(data: ProjectData) -> Figure:
    """Crashes in the last 24 hours: steps whose agent crashed, and runs left mid-state by a driver that died."""
    since = data.now - timedelta(days=1)
    events = crash_events(data)
    recent = [e for e in events if e[0] >= since]
    steps = sum(1 for e in recent if e[1] == "step")
    runs = len(recent) - steps
    return measured("crashes_per_day", PHASE, "Crash count", len(recent), f"{len(recent)}/day", CRASHES,
                    f"last 24 h: {steps} agent crash(es), {runs} run(s) whose driver died mid-state")


def crash_events(data: ProjectData) -> list[tuple]:
    """(when, "step" | "run", run id, what) for every crash the store shows."""
    events = []
    for run in data.runs:
        for step in data.steps.get(run.id, []):
            if step.error and CRASH_MARK in step.error:
                at = parse_time(step.finished_at or step.started_at)
                if at:
                    events.append((at, "step", run.id, step.error[:200]))
        if run.state not in FINISHED and run.state not in WAITING and run.state != "CREATED" and _abandoned(run):
            at = parse_time(run.heartbeat_at or run.updated_at)
            if at:
                events.append((at, "run", run.id, f"left in {run.state} with no live driver"))
    return events


def _abandoned(run) -> bool:
    """No process drives the run: none recorded, or the one recorded on this host is gone."""
    import socket

    if not run.owner_pid:
        return True
    if run.owner_host != socket.gethostname():
        return False  # driven elsewhere, maybe: not counted
    return not run.owner_alive_here()


def figures(data: ProjectData, latency_ms: list[float] | None) -> list[Figure]:
    return [system_health(data), error_rate(data), cli_latency(latency_ms), crashes(data)]
