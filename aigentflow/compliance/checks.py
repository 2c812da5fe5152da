"""The automatic checks behind the controls: each reads what the project records (the run store, its
configuration and flags, the vendor register, the last dependency scan) and returns pass, fail or no
evidence, with the reason and the evidence it used. Standard library only; never imports Ray or a model."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from aigentflow.project.paths import ProjectPaths

PASS, FAIL, NO_EVIDENCE = "pass", "fail", "no evidence"
DEPS_SCAN_FILE = "deps/last-scan.json"
"""Where `aigentflow deps scan` leaves its last result, under the state directory."""


@dataclass(frozen=True)
class Outcome:
    state: str
    reason: str
    evidence: list[str] = field(default_factory=list)


@dataclass
class Context:
    """What the checks read, each part loaded once and only when a check asks for it."""

    paths: ProjectPaths
    connection: sqlite3.Connection

    def rows(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        return self.connection.execute(sql, params).fetchall()

    @cached_property
    def config(self) -> Any:
        from aigentflow.config.loader import load_config

        return load_config(self.paths.root)

    @cached_property
    def step_outputs(self) -> list[tuple[str, str, Any]]:
        """(run id, step, output) of every completed step."""
        found = []
        for row in self.rows("SELECT run_id, step, output_json FROM steps WHERE output_json IS NOT NULL"):
            try:
                found.append((row["run_id"], row["step"], json.loads(row["output_json"])))
            except json.JSONDecodeError:
                continue
        return found


def _walk(item: Any) -> Iterator[dict[str, Any]]:
    pending = [item]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            yield item
            pending += list(item.values())
        elif isinstance(item, list):
            pending += item


def sandbox(ctx: Context) -> Outcome:
    kinds: dict[str, list[str]] = {}
    for run_id, step, output in ctx.step_outputs:
        for item in _walk(output):
            isolation = item.get("isolation")
            if isinstance(isolation, dict) and isinstance(isolation.get("filesystem"), str):
                kinds.setdefault(isolation["filesystem"], []).append(f"{run_id}/{step}")
    if ctx.config.settings.build.sandbox_allow_unconfined:
        return Outcome(FAIL, "build.sandbox_allow_unconfined = true: agents' commands may run unconfined",
                       ["config build.sandbox_allow_unconfined"])
    if not kinds:
        return Outcome(NO_EVIDENCE, "no step recorded a sandboxed command yet")
    unconfined = {k: v for k, v in kinds.items() if k != "bwrap"}
    commands = sum(len(v) for v in kinds.values())
    if unconfined:
        where = sorted({s for v in unconfined.values() for s in v})
        return Outcome(FAIL, f"{sum(len(v) for v in unconfined.values())} of {commands} commands ran with "
                             f"filesystem {', '.join(sorted(unconfined))}", where[:10])
    return Outcome(PASS, f"all {commands} recorded commands ran confined (bwrap)",
                   sorted({s for v in kinds.values() for s in v})[:10])


SECRET_SOURCES = (
    ("run", "SELECT id AS ref, request || char(10) || coalesce(error, '') AS text FROM runs"),
    ("step", "SELECT run_id || '/' || step || '/' || attempt AS ref, "
             "coalesce(output_json, '') || char(10) || coalesce(error, '') AS text FROM steps"),
    ("audit", "SELECT seq AS ref, data_json AS text FROM audit"),
)


def secrets(ctx: Context) -> Outcome:
    from aigentflow.redact import Redactor

    redactor = Redactor.from_environment(extra_patterns=ctx.config.settings.trace.redact_patterns)
    leaks, scanned = [], 0
    for table, sql in SECRET_SOURCES:
        for row in ctx.rows(sql):
            scanned += 1
            if not redactor.is_clean(row["text"] or ""):
                leaks.append(f"{table}:{row['ref']}")
    outputs = ctx.paths.runs_dir
    for path in sorted(outputs.rglob("*.json")) if outputs.is_dir() else []:
        scanned += 1
        try:
            if not redactor.is_clean(path.read_text(encoding="utf-8", errors="replace")):
                leaks.append(str(path.relative_to(ctx.paths.root)))
        except OSError:
            continue
    if not scanned:
        return Outcome(NO_EVIDENCE, "nothing recorded yet to scan")
    if leaks:
        return Outcome(FAIL, f"{len(leaks)} of {scanned} records hold secret-shaped text", leaks[:10])
    return Outcome(PASS, f"{scanned} records scanned (runs, steps, audit, run outputs): no secret-shaped text",
                   [f"{scanned} records"])


def audit_log(ctx: Context) -> Outcome:
    first, last, count = ctx.rows("SELECT min(seq), max(seq), count(*) FROM audit")[0]
    triggers = {r[0] for r in ctx.rows("SELECT name FROM sqlite_master WHERE type='trigger'")}
    guarded = {"transitions_append_only_update", "transitions_append_only_delete"} <= triggers
    if not count:
        return Outcome(NO_EVIDENCE, "the audit log has no entries yet")
    if not guarded:
        return Outcome(FAIL, "the run transitions' append-only triggers are missing", ["sqlite_master"])
    if last - first + 1 != count or first != 1:
        return Outcome(FAIL, f"the audit sequence has gaps: {count} entries numbered {first}..{last} "
                             "(entries were deleted)", [f"audit seq {first}..{last}"])
    return Outcome(PASS, f"{count} audit entries, seq 1..{last} without gaps; transitions append-only",
                   [f"audit seq 1..{last}"])


def _flag(ctx: Context, name: str) -> Any:
    return ctx.config.flags.get(name)


def approval_gate(ctx: Context) -> Outcome:
    on = bool(_flag(ctx, "evolution.requireApproval"))
    return Outcome(PASS if on else FAIL, f"evolution.requireApproval = {str(on).lower()}",
                   ["flag evolution.requireApproval"])


def code_review(ctx: Context) -> Outcome:
    values = {name: bool(_flag(ctx, name)) for name in ("agents.reviewer", "features.codeReview")}
    off = [name for name, value in values.items() if not value]
    evidence = [f"flag {name} = {str(value).lower()}" for name, value in values.items()]
    if off:
        return Outcome(FAIL, f"off: {', '.join(off)} (preset {ctx.config.settings.flags.preset})", evidence)
    return Outcome(PASS, "the reviewer agent and code review are on", evidence)


def tests_before_merge(ctx: Context) -> Outcome:
    merged, untested = [], []
    for run_id, step, output in ctx.step_outputs:
        tasks = output.get("tasks") if isinstance(output, dict) else None
        for task_id, task in (tasks or {}).items() if isinstance(tasks, dict) else []:
            if isinstance(task, dict) and task.get("merged"):
                merged.append(f"{run_id}/{step}/{task_id}")
                if task.get("status") != "passed" or not task.get("tests"):
                    untested.append(f"{run_id}/{step}/{task_id}")
    if not merged:
        return Outcome(NO_EVIDENCE, "no build has merged a task yet")
    if untested:
        return Outcome(FAIL, f"{len(untested)} of {len(merged)} merged tasks without passing tests", untested[:10])
    return Outcome(PASS, f"all {len(merged)} merged tasks had passing tests", merged[:10])


def incident_routes(ctx: Context) -> Outcome:
    from aigentflow.incidents.config import load_settings

    routes = load_settings(ctx.paths.root).routes
    if not routes:
        return Outcome(FAIL, "no alert route is configured ([[incidents.routes]] in config.toml)")
    return Outcome(PASS, f"{len(routes)} alert route(s): {', '.join(r.name for r in routes)}",
                   [f"route {r.name}" for r in routes])


def retention(ctx: Context) -> Outcome:
    gdpr = ctx.config.settings.gdpr
    days = {name: getattr(gdpr, f"retention_{name}_days") for name in ("traces", "outputs", "worktrees")}
    evidence = [f"gdpr.retention_{name}_days = {value}" for name, value in days.items()]
    bounded = [f"{name} {value} days" for name, value in days.items() if value]
    if not bounded:
        return Outcome(FAIL, "no retention limit set: everything is kept forever", evidence)
    return Outcome(PASS, "retention: " + ", ".join(bounded), evidence)


def vendors(ctx: Context) -> Outcome:
    from aigentflow.enterprise.vendors.register import Register

    register = Register.load(ctx.paths.state_dir)
    if not register.stored:
        return Outcome(NO_EVIDENCE, "no vendor register yet (`aigentflow vendors assess`)")
    missing = [v.id for v in register.vendors if v.dpa == "no" or not v.assessments]
    evidence = [f"vendor {v.id}: dpa {v.dpa}, {len(v.assessments)} assessment(s)" for v in register.vendors]
    if missing:
        return Outcome(FAIL, f"without a DPA or an assessment: {', '.join(missing)}", evidence)
    return Outcome(PASS, f"all {len(register.vendors)} vendors have a DPA and an assessment", evidence)


def deps_scan(ctx: Context) -> Outcome:
    path = ctx.paths.state_dir / DEPS_SCAN_FILE
    if not path.is_file():
        return Outcome(NO_EVIDENCE, "no stored dependency scan (`aigentflow deps scan --project`)")
    try:
        result = json.loads(path.read_text(encoding="utf-8"))
        findings = result.get("findings") or []
    except (OSError, json.JSONDecodeError, AttributeError):
        return Outcome(NO_EVIDENCE, f"{path} is not a scan result")
    at = result.get("scanned_at", "?")
    if findings:
        ids = sorted({str(f.get("id", "?")) for f in findings if isinstance(f, dict)})
        return Outcome(FAIL, f"{len(findings)} known vulnerabilities at {at}", ids[:10])
    return Outcome(PASS, f"{result.get('scanned', '?')} packages, no known vulnerability (scan of {at})",
                   [str(path.relative_to(ctx.paths.root))])


def tracing(ctx: Context) -> Outcome:
    runs = ctx.rows("SELECT count(*) FROM runs")[0][0]
    traces = ctx.paths.traces_dir
    files = [p for p in traces.rglob("*") if p.is_file()] if traces.is_dir() else []
    if not runs:
        return Outcome(NO_EVIDENCE, "no run yet")
    if not files:
        return Outcome(FAIL, f"{runs} runs but no trace recorded in {traces.name}/")
    return Outcome(PASS, f"{runs} runs, {len(files)} trace files", [f"{traces.relative_to(ctx.paths.root)}/"])


def store_integrity(ctx: Context) -> Outcome:
    from aigentflow.store.migrations import LATEST_VERSION

    verdict = ctx.rows("PRAGMA quick_check")[0][0]
    version = ctx.rows("PRAGMA user_version")[0][0]
    evidence = [f"quick_check {verdict}", f"schema {version}/{LATEST_VERSION}"]
    if verdict != "ok" or version != LATEST_VERSION:
        return Outcome(FAIL, f"quick_check {verdict}, schema {version} (latest {LATEST_VERSION})", evidence)
    return Outcome(PASS, f"integrity ok, schema {version} (latest)", evidence)


def attestation(ctx: Context) -> Outcome:
    return Outcome(NO_EVIDENCE, "decided by a person: no unexpired attestation")


CHECKS: dict[str, Callable[[Context], Outcome]] = {
    "sandbox": sandbox, "secrets": secrets, "audit_log": audit_log, "approval_gate": approval_gate,
    "code_review": code_review, "tests_before_merge": tests_before_merge, "incident_routes": incident_routes,
    "retention": retention, "vendors": vendors, "deps_scan": deps_scan, "tracing": tracing,
    "store_integrity": store_integrity, "attestation": attestation,
}
