"""The demo's wall time, broken down: Ray start, the run's steps, the model, sandboxed commands.

Runs `aigentflow demo` as a user does (a fresh process, its own local Ray on 127.0.0.1, the replay
model) in a temporary directory, then reads the run's spans and step records:

- ``process_s``: the whole command; ``run_s``: the run itself (its root span, CREATED to COMPLETED);
  ``before_run_s``: the rest (Python start, sample project, `init`, Ray start, agents' start).
- ``model_s``: every model call (``chat`` spans; the replay model answers in microseconds).
- ``sandboxed_s``: the project's own commands (tests, lint, coverage) as the sandbox timed them.
- ``steps_s``: time in each state (its ``state <S>`` span); ``agents_start_s``: from the run's start to
  its first state (handing the run to the node's run host, which starts the run's agent actors and
  the Model Gateway, importing litellm, on a fresh cluster; on a warm one it finds them running).
- ``overhead_s`` = run_s - model_s - sandboxed_s: aigentflow's own share of the run, and its ratio.
- ``git_s``: the run's Git Agent's git commands (worktrees, commits, merges), part of the overhead.
Target: aigentflow's own overhead under 10% of the run.

``--warm``: on a cluster started by `aigentflow cluster up` (the node's run host with its keeper,
the Git Agent, the agents and the Model Gateway are detached and outlive a run), the demos after the
first (``--runs N`` of them, default 3; the figures are the run with the median overhead, every run's
``overhead_s`` and ``overhead_ratio`` ride along, and the first one's figures too).

Prints one JSON line: {"benchmark": "demo_breakdown", ...}.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def sandboxed_seconds(outputs: list[dict[str, Any]]) -> float:
    """Every sandboxed command's own duration, from the step outputs (tests, lint, coverage)."""
    total = 0.0

    def add(value: Any) -> None:
        nonlocal total
        total += float(value or 0.0)

    for output in outputs:
        add((output.get("coverage_baseline") or {}).get("duration_s"))
        tasks = output.get("tasks")
        for task in tasks.values() if isinstance(tasks, dict) else []:  # the build step (the plan has a list)
            for part in task.get("steps", []):
                add(part.get("duration_s"))
            for review in task.get("reviews", []):
                add((review.get("lint") or {}).get("duration_s"))
            add((task.get("coverage") or {}).get("duration_s"))
        add((output.get("tests") or {}).get("duration_s"))
        add((output.get("coverage") or {}).get("duration_s"))  # TESTING: coverage of the feature's head
        add(((output.get("project") or {}).get("baseline") or {}).get("duration_s"))  # the Project Analyzer's
        add((output.get("lint") or {}).get("duration_s"))
    return total


def git_seconds(outputs: list[dict[str, Any]]) -> float:
    """The Git Agent's git commands during the run's steps (each workflow step records its own)."""
    return sum(float((output.get("git") or {}).get("seconds") or 0.0) for output in outputs)


def demo(target: Path, env: dict[str, str]) -> dict[str, Any]:
    """Run `aigentflow demo` into ``target`` as a fresh process; its breakdown."""
    bindir = Path(sys.executable).parent
    started = time.perf_counter()
    proc = subprocess.run([str(bindir / "aigentflow"), "demo", "--dir", str(target)], capture_output=True,
                          text=True, env=env, timeout=600, check=False)
    process_s = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"the demo failed: {proc.stderr[-2000:]}")
    from aigentflow.project.paths import ProjectPaths
    from aigentflow.store.sqlite import SQLiteRunStore
    from aigentflow.tracing.reader import read_spans

    paths = ProjectPaths(target)
    store = SQLiteRunStore(paths.database, readonly=True)
    run = store.list_runs(1)[0]
    outputs = [s.output or {} for s in store.steps(run.id)]
    store.close()
    spans = read_spans(paths.traces_dir, run.id)

    def total(kind: str, name_prefix: str = "") -> float:
        return sum((s["end_ns"] - s["start_ns"]) / 1e9 for s in spans
                   if s["kind"] == kind and s["name"].startswith(name_prefix))

    run_s = total("run")
    model_s = total("model")
    sandboxed = sandboxed_seconds(outputs)
    overhead = run_s - model_s - sandboxed
    root = next(s for s in spans if s["kind"] == "run")
    first_state = min((s["start_ns"] for s in spans if s["kind"] == "state"), default=root["start_ns"])
    agents_start_s = (first_state - root["start_ns"]) / 1e9
    return {
        "run_id": run.id, "process_s": round(process_s, 2), "run_s": round(run_s, 2),
        "before_run_s": round(process_s - run_s, 2), "model_s": round(model_s, 4),
        "sandboxed_s": round(sandboxed, 2), "git_s": round(git_seconds(outputs), 2),
        "steps_s": {name: round(total("state", f"state {name}"), 2) for name in (
            "ANALYZING", "PLANNING", "ARCHITECTING", "BUILDING", "TESTING", "REVIEWING", "MERGING")},
        "agents_start_s": round(agents_start_s, 2),
        "overhead_s": round(overhead, 2), "overhead_after_start_s": round(overhead - agents_start_s, 2),
        "overhead_ratio": round(overhead / run_s, 3) if run_s else None,
    }


def main() -> None:
    warm = "--warm" in sys.argv[1:]
    runs = int(sys.argv[sys.argv.index("--runs") + 1]) if "--runs" in sys.argv[1:] else 3
    with tempfile.TemporaryDirectory(prefix="af-bench-demo-") as tmp:
        env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
        env.update(AIGENTFLOW_CONFIG_HOME=str(Path(tmp) / "config"), TMPDIR=tempfile.mkdtemp(prefix="afbd", dir="/tmp"))
        report: dict[str, Any] = {"benchmark": "demo_breakdown", "mode": "warm" if warm else "cold",
                                  "load_before": round(os.getloadavg()[0], 2)}
        if not warm:
            report.update(demo(Path(tmp) / "demo", env))
        else:
            aigentflow = str(Path(sys.executable).parent / "aigentflow")
            subprocess.run([aigentflow, "cluster", "up", "--no-dashboard", "--temp-dir", str(Path(tmp) / "ray")],
                           env=env, check=True, capture_output=True, timeout=300)
            try:
                report["first"] = demo(Path(tmp) / "first", env)  # starts the detached agents and the gateway
                warm_runs = [demo(Path(tmp) / f"warm-{n}", env) for n in range(runs)]
                median = sorted(warm_runs, key=lambda r: r["overhead_s"])[len(warm_runs) // 2]
                report.update(median)
                report["runs"] = [{key: r[key] for key in ("overhead_s", "overhead_ratio", "run_s", "sandboxed_s")}
                                  for r in warm_runs]
            finally:
                subprocess.run([aigentflow, "cluster", "down"], env=env, check=False, capture_output=True, timeout=300)
        report["target_overhead_ratio"] = 0.10
        report["load_after"] = round(os.getloadavg()[0], 2)  # other work on the machine skews every figure
        print(json.dumps(report))


if __name__ == "__main__":
    main()
