"""Canary rollout of a promoted role version: 10% -> 25% -> 50% -> 100% of new runs.

The state is ``.aigentflow/canary/<role>.json`` (plain data; aigentflow's run creation routes runs by
it, ``aigentflow.roles.canary``). Each stage is held until its checks pass against the incumbent on
the runs created since the stage began: the candidate has at least ``MIN_RUNS`` finished runs, its
success rate is no more than ``SUCCESS_TOLERANCE`` below the incumbent's, its median cost at most
``COST_RATIO`` times and its median duration at most ``LATENCY_RATIO`` times (plus ``LATENCY_SLACK_S``) the
incumbent's, and where the runs build tasks, the share of them whose tests passed on its edits (the test
pass rate) no more than ``SUCCESS_TOLERANCE`` below the incumbent's (Flagger-style analysis). A regression
(a success or test pass rate significantly below that, or any check failed after MIN_RUNS runs; see
``analyse``) rolls the canary back at once (status ``rolled_back``, routing back to the
incumbent) and an incident is recorded. At 100% the candidate becomes the project's
``agents.<role>.version``.
"""

from __future__ import annotations

import json
import math
import shutil
from datetime import datetime
from pathlib import Path
from typing import Any

from aigentflow.exceptions import UsageError
from aigentflow.models.cassette import write_json_atomic
from evolution.tournament import store as evolution_store
from evolution.tournament.store import now_iso

STAGES = (10, 25, 50, 100)
SHADOW, CANARY = "shadow", "canary"
WATCHER = "evolution.rollout.watch:run_finished"
"""The function aigentflow calls after every run while the rollout is active (``aigentflow.roles.canary``)."""
MIN_RUNS = 3
SUCCESS_TOLERANCE = 0.10
ALPHA = 0.05
"""How unlikely the candidate's successes must be, were it only the tolerance worse, to call a regression."""
COST_RATIO = 1.5
LATENCY_RATIO = 1.5
LATENCY_SLACK_S = 2.0
"""A candidate's median run may be this much slower than the ratio allows before it counts: a few runs on a
busy machine vary by seconds, which says nothing about the version."""
FINISHED = ("COMPLETED", "FAILED", "CANCELLED")

_INCIDENTS = """
CREATE TABLE IF NOT EXISTS incidents (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    role TEXT NOT NULL,
    candidate TEXT NOT NULL,
    incumbent TEXT NOT NULL,
    percent INTEGER NOT NULL,
    reason TEXT NOT NULL,
    evidence_json TEXT NOT NULL,
    at TEXT NOT NULL
);
"""


def canary_file(paths: Any, role: str) -> Path:
    return Path(paths.state_dir) / "canary" / f"{role}.json"


def read_canary(paths: Any, role: str) -> dict[str, Any] | None:
    path = canary_file(paths, role)
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def _write(paths: Any, canary: dict[str, Any]) -> None:
    write_json_atomic(canary_file(paths, canary["role"]), canary)


def _seconds(start: str, end: str | None) -> float | None:
    if not end:
        return None
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def stage_runs(paths: Any, canary: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The finished runs created since the stage began, by which version of the role they used."""
    from aigentflow.store.sqlite import SQLiteRunStore

    store = SQLiteRunStore(paths.database)
    try:
        runs = [r for r in store.list_runs(limit=10_000) if r.created_at >= canary["stage_started_at"]
                and r.state in FINISHED]
        out: dict[str, list[dict[str, Any]]] = {"candidate": [], "incumbent": []}
        for run in runs:
            version = ((run.settings.get("agents") or {}).get(canary["role"]) or {}).get("version")
            side = "candidate" if version == canary["candidate"] else "incumbent" if version == canary["incumbent"] \
                else None
            if side:
                steps = store.steps(run.id)
                tasks, passed = build_tasks(canary["role"], steps)
                out[side].append({"run": run.id, "ok": run.state == "COMPLETED",
                                  "cost_usd": sum(step.cost_usd for step in steps),
                                  "seconds": _seconds(run.created_at, run.finished_at), "tasks": tasks,
                                  "tasks_passed": passed})
        return out
    finally:
        store.close()


def build_tasks(role: str, steps: list[Any]) -> tuple[int, int]:
    """A run's build tasks that ``role`` implemented, and those whose tests passed on its edits (the first
    implementation of each task, before any fix: what a shadow of the task compares)."""
    tasks = passed = 0
    for step in steps:
        if step.step.split(".")[0] != "build" or not isinstance(step.output, dict):
            continue
        for task_id, task in (step.output.get("tasks") or {}).items():
            first = next((s for s in task.get("steps", []) if s.get("role") == role
                          and s.get("step") == f"build/{task_id}"), None)
            if first is not None:
                tasks += 1
                passed += first.get("status") == "passed"
    return tasks, passed


def _summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    if not runs:
        return {"runs": 0, "success_rate": None, "cost_usd": None, "seconds": None, "tasks": 0,
                "test_pass_rate": None}
    import statistics

    times = [r["seconds"] for r in runs if r["seconds"] is not None]
    tasks = sum(r.get("tasks", 0) for r in runs)
    # Medians: one run slowed by the machine (or one expensive retry) does not decide a stage.
    return {"runs": len(runs), "success_rate": sum(r["ok"] for r in runs) / len(runs),
            "cost_usd": statistics.median(r["cost_usd"] for r in runs),
            "seconds": statistics.median(times) if times else None, "tasks": tasks,
            "test_pass_rate": sum(r.get("tasks_passed", 0) for r in runs) / tasks if tasks else None}


def _floor_test(candidate_passed: int, candidate_trials: int, passed: int, trials: int) -> tuple[float, float]:
    """The rate the candidate may not fall under (the incumbent's ``passed`` of ``trials``, Laplace-smoothed,
    less the tolerance) and the one-sided binomial p-value of its ``candidate_passed`` of ``candidate_trials``."""
    baseline = (passed + 1) / (trials + 2) if trials else 1.0
    floor = max(baseline - SUCCESS_TOLERANCE, 0.0)
    return floor, _binomial_cdf(candidate_passed, candidate_trials, floor) if candidate_trials else 1.0


def _binomial_cdf(successes: int, runs: int, rate: float) -> float:
    return sum(math.comb(runs, k) * rate ** k * (1 - rate) ** (runs - k) for k in range(successes + 1))


def analyse(candidate: list[dict[str, Any]], incumbent: list[dict[str, Any]]) -> dict[str, Any]:
    """The stage's checks: ``verdict`` is ``pass`` (at least MIN_RUNS candidate runs and every check
    met), ``fail`` (a regression: a success rate, or a build tasks' test pass rate, significantly below the
    incumbent's less the tolerance, one-sided binomial test at ``ALPHA``; or after MIN_RUNS runs, cost or
    latency over their ratio, or the test pass rate under its floor), else ``hold`` (more runs needed)."""
    mine, theirs = _summary(candidate), _summary(incumbent)

    def within(name: str, ratio: float, slack: float = 0.0) -> bool:
        return mine[name] is not None and mine[name] <= theirs[name] * ratio + slack

    done = mine["runs"] >= MIN_RUNS
    # The incumbent's rate smoothed (Laplace), so that a handful of its runs is not taken as certainty.
    floor, p_value = _floor_test(sum(r["ok"] for r in candidate), len(candidate),
                                 sum(r["ok"] for r in incumbent), len(incumbent))
    checks = [("success rate", mine["success_rate"] is not None and mine["success_rate"] >= floor)]
    regressions = ["success rate"] if p_value < ALPHA else []
    if theirs["cost_usd"]:
        checks.append(("cost", within("cost_usd", COST_RATIO)))
    if theirs["seconds"]:
        checks.append(("latency", within("seconds", LATENCY_RATIO, LATENCY_SLACK_S)))
    tests_floor = tests_p = None
    if theirs["tasks"]:  # build tasks: the share whose tests passed, the candidate's against the incumbent's
        tests_floor, tests_p = _floor_test(sum(r.get("tasks_passed", 0) for r in candidate),
                                           mine["tasks"], sum(r.get("tasks_passed", 0) for r in incumbent),
                                           theirs["tasks"])
        checks.append(("test pass rate", mine["test_pass_rate"] is not None and mine["test_pass_rate"] >= tests_floor))
        regressions += ["test pass rate"] if tests_p < ALPHA else []
    failed = [name for name, ok in checks if not ok]
    regressions += [name for name in failed if name not in ("success rate", *regressions) and done
                    and (name != "test pass rate" or mine["tasks"])]
    if regressions:
        verdict = "fail"
    else:
        verdict = "pass" if done and not failed else "hold"
    return {"verdict": verdict, "failed_checks": regressions or failed, "candidate": mine, "incumbent": theirs,
            "success_floor": floor, "p_value": p_value, "test_pass_floor": tests_floor, "test_pass_p_value": tests_p,
            "needs_runs": max(0, MIN_RUNS - mine["runs"])}


def stage_name(canary: dict[str, Any]) -> str:
    """``shadow`` or ``10%`` .. ``100%``."""
    return SHADOW if canary.get("stage") == SHADOW else f"{canary['percent']}%"


def judge(canary: dict[str, Any], candidate: list[dict[str, Any]],
          incumbent: list[dict[str, Any]]) -> tuple[str, dict[str, Any]]:
    """What the stage's checks call for, given its runs: ``rollback`` (a regression), ``to_canary`` (a shadow
    stage whose checks pass: the canary starts at 10%, the documented rule), else ``hold``. The one
    decision the watcher (after every run), ``status``, ``advance`` and the simulation all make."""
    analysis = analyse(candidate, incumbent)
    if analysis["verdict"] == "fail":
        return "rollback", analysis
    if canary.get("stage") == SHADOW and analysis["verdict"] == "pass":
        return "to_canary", analysis
    return "hold", analysis


def check(paths: Any, role: str) -> dict[str, Any]:
    """The rollout of ``role`` and its stage's checks, acted on: a regression is rolled back at once (with
    an incident), a shadow stage that passes moves to the canary's 10%. Run after every run by the watcher
    (``evolution.rollout.watch``) and by ``status``."""
    canary = read_canary(paths, role)
    if canary is None:
        return {"role": role, "status": "none"}
    if canary["status"] != "active":
        return canary
    if canary.get("stage") == SHADOW:
        from evolution.rollout.shadow import shadow_runs

        runs = shadow_runs(paths, canary)
    else:
        runs = stage_runs(paths, canary)
    action, analysis = judge(canary, runs["candidate"], runs["incumbent"])
    if action == "rollback":
        return rollback(paths, role, f"regression at {stage_name(canary)}: {', '.join(analysis['failed_checks'])}",
                        analysis)
    if action == "to_canary":
        return {**_next_stage(paths, canary, analysis), "analysis": analysis, "advanced": True}
    return {**canary, "analysis": analysis}


def status(paths: Any, role: str) -> dict[str, Any]:
    """The rollout of ``role`` and its stage's analysis (``check``: what the checks call for is done here too)."""
    return check(paths, role)


def _next_stage(paths: Any, canary: dict[str, Any], passed: dict[str, Any]) -> dict[str, Any]:
    """The stage after the current one (shadow -> 10% -> 25% -> 50% -> 100%), written."""
    if canary.get("stage") == SHADOW:
        canary.update({"stage": CANARY, "percent": STAGES[0]})
    else:
        canary["percent"] = STAGES[STAGES.index(canary["percent"]) + 1]
    canary["stage_started_at"] = now_iso()
    canary["history"].append({"stage": canary["stage"], "percent": canary["percent"], "at": canary["stage_started_at"],
                              "passed": passed})
    if canary["percent"] == 100:
        from aigentflow.config.loader import set_value

        set_value(paths.config_file, f"agents.{canary['role']}.version", canary["candidate"])
        canary["status"] = "completed"
    _write(paths, canary)
    return canary


def _install(paths: Any, role: str, version: str) -> str | None:
    """A shipped variant is copied into the project's agents folder (so runs can use it); the copied path."""
    from evolution.tournament.versions import SHIPPED_VARIANT, VARIANTS_DIR, playable

    entry = playable(paths).registry.get(role, version)
    if not entry.source.startswith(SHIPPED_VARIANT):
        return None
    target = Path(paths.agents_dir) / role
    target.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(VARIANTS_DIR / role / f"{version}.toml", target / f"{version}.toml")
    for layer in entry.spec.role_layers:
        if layer.startswith(f"agents/{role}/"):
            shutil.copyfile(VARIANTS_DIR / role / layer.rsplit("/", 1)[1], target / layer.rsplit("/", 1)[1])
    return str(target / f"{version}.toml")


def advance(paths: Any, role: str) -> dict[str, Any]:
    """Start the canary of ``role``'s approved promotion at 10%, or move it to the next stage if the
    stage's checks pass (``hold``: a UsageError-free refusal, nothing changed; ``fail``: rolled back)."""
    from evolution.rollout.switches import evolution_disabled

    if reason := evolution_disabled(paths.root):
        raise UsageError(f"self-evolution is disabled ({reason}); the canary was not advanced")
    canary = read_canary(paths, role)
    if canary is None or canary["status"] != "active":
        return _start(paths, role)
    current = check(paths, role)
    if current["status"] != "active" or current.get("advanced"):
        return current
    if current["analysis"]["verdict"] != "pass":
        return {**current, "advanced": False}
    return {**_next_stage(paths, canary, current["analysis"]), "advanced": True}


def _start(paths: Any, role: str) -> dict[str, Any]:
    from evolution.tournament.promotion import incumbent_version

    with evolution_store.connect(paths.root) as db:
        from evolution.tournament.promotion import _SCHEMA

        db.executescript(_SCHEMA)
        row = db.execute("SELECT * FROM promotions WHERE role = ? AND status = 'approved' ORDER BY decided_at DESC "
                         "LIMIT 1", (role,)).fetchone()
    if row is None:
        raise UsageError(f"{role} has no approved promotion to roll out; `aigentflow tournament promote {role} "
                         "VERSION` (and `tournament approve`) first. Nothing changed.")
    incumbent = incumbent_version(paths, role)
    if row["version"] == incumbent:
        raise UsageError(f"{role} {row['version']} is already the version runs use. Nothing changed.")
    from aigentflow.config.loader import load_config

    installed = _install(paths, role, row["version"])
    started = now_iso()
    shadow_first = bool(load_config(paths.root).flags.get("evolution.shadowModeFirst", True))
    stage, percent = (SHADOW, 0) if shadow_first else (CANARY, STAGES[0])
    canary = {"role": role, "candidate": row["version"], "incumbent": incumbent, "stage": stage, "percent": percent,
              "status": "active", "started_at": started, "stage_started_at": started, "installed": installed,
              "watch": WATCHER, "history": [{"stage": stage, "percent": percent, "at": started}]}
    _write(paths, canary)
    with evolution_store.connect(paths.root) as db:
        db.execute("UPDATE promotions SET status = 'canary' WHERE role = ? AND version = ?", (role, row["version"]))
    return {**canary, "advanced": True}


def rollback(paths: Any, role: str, reason: str, evidence: dict[str, Any] | None = None) -> dict[str, Any]:
    """Back to the incumbent: the canary stops routing runs (status ``rolled_back``); an incident is
    recorded. A completed canary is undone too (``agents.<role>.version`` set back)."""
    canary = read_canary(paths, role)
    if canary is None or canary["status"] == "rolled_back":
        raise UsageError(f"{role} has no canary to roll back. Nothing changed.")
    if canary["status"] == "completed":
        from aigentflow.config.loader import set_value

        set_value(paths.config_file, f"agents.{role}.version", canary["incumbent"])
    canary.update({"status": "rolled_back", "rolled_back_at": now_iso(), "rollback_reason": reason})
    _write(paths, canary)
    with evolution_store.connect(paths.root) as db:
        db.executescript(_INCIDENTS)
        cursor = db.execute("INSERT INTO incidents (role, candidate, incumbent, percent, reason, evidence_json, at) "
                            "VALUES (?, ?, ?, ?, ?, ?, ?)", (role, canary["candidate"], canary["incumbent"],
                                                             canary["percent"], reason,
                                                             json.dumps(evidence or {}, default=str), now_iso()))
        canary["incident"] = cursor.lastrowid
    return canary


def incidents(project_root: Path) -> list[dict[str, Any]]:
    with evolution_store.connect(project_root) as db:
        db.executescript(_INCIDENTS)
        return [dict(r) for r in db.execute("SELECT * FROM incidents ORDER BY id")]
