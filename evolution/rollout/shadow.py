"""The shadow stage's evidence: the records aigentflow appends while a candidate shadows the incumbent
(``.aigentflow/shadow/<role>.jsonl``, one line per step played, written by ``aigentflow.run.shadow``),
read back as one entry per run and version for the stage's checks (``canary.analyse``, the same checks
as a canary stage: success, cost, latency, and for build tasks the test pass rate). A run's side succeeds
when every step it played passed (a build task's: its edits were applied and tested); its grade is the mean
of its steps' grades (a build task's: the share of its test cases passing); ``tasks`` and ``tasks_passed``
count its build tasks and those whose tests passed."""

from __future__ import annotations

import json
from typing import Any

from aigentflow.roles.canary import shadow_file


def read_records(paths: Any, role: str) -> list[dict[str, Any]]:
    """Every shadow record of ``role``, oldest first (a torn last line, from a kill, is skipped)."""
    path = shadow_file(paths.state_dir, role)
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            continue
    return records


def _per_run(records: list[dict[str, Any]], side: str) -> list[dict[str, Any]]:
    runs: dict[str, dict[str, Any]] = {}
    for record in records:
        half = record[side]
        run = runs.setdefault(record["run_id"], {"run": record["run_id"], "ok": True, "cost_usd": 0.0,
                                                 "seconds": 0.0, "grades": [], "steps": 0, "tasks": 0,
                                                 "tasks_passed": 0})
        run["ok"] = run["ok"] and bool(half["ok"])
        if "tests_passed" in half:  # a build task's edits, tested (``actors.workflow.shadow``)
            run["tasks"] += 1
            run["tasks_passed"] += bool(half["tests_passed"])
        run["cost_usd"] += float(half.get("cost_usd") or 0.0)
        run["seconds"] += float(half.get("seconds") or 0.0)
        run["grades"].append(float(half.get("grade") or 0.0))
        run["steps"] += 1
    for run in runs.values():
        run["grade"] = sum(run.pop("grades")) / run["steps"]
    return list(runs.values())


def shadow_runs(paths: Any, canary: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The stage's shadow runs by side (``candidate``, ``incumbent``): the records since the stage began
    of this candidate beside this incumbent."""
    records = [r for r in read_records(paths, canary["role"]) if r.get("at", "") >= canary["stage_started_at"]
               and r["candidate"]["version"] == canary["candidate"]
               and r["incumbent"]["version"] == canary["incumbent"]]
    return {"candidate": _per_run(records, "candidate"), "incumbent": _per_run(records, "incumbent")}


def summary(paths: Any, canary: dict[str, Any]) -> dict[str, Any]:
    """What ``canary status`` shows of the shadow stage: runs, how often each side passed, mean grades."""
    runs = shadow_runs(paths, canary)

    def half(entries: list[dict[str, Any]]) -> dict[str, Any]:
        n = len(entries)
        tasks = sum(e["tasks"] for e in entries)
        return {"runs": n, "passed": sum(e["ok"] for e in entries),
                "grade": round(sum(e["grade"] for e in entries) / n, 3) if n else None,
                "tasks": tasks, "tasks_passed": sum(e["tasks_passed"] for e in entries),
                "cost_usd": round(sum(e["cost_usd"] for e in entries), 6),
                "seconds": round(sum(e["seconds"] for e in entries), 3)}

    return {"candidate": half(runs["candidate"]), "incumbent": half(runs["incumbent"]),
            "records": [r["run"] for r in runs["candidate"]]}
