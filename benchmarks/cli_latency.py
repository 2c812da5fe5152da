"""CLI start-up latency: `aigentflow --help` and `aigentflow status` as whole processes.

`status` runs in an initialised sample repository holding one completed run (made in-process with the
replay model, without Ray), so it prints a real report. Also checks, with `python -X importtime`,
that `status` imports neither ray nor litellm.

Prints one JSON line: {"benchmark": "cli_latency", "help_p50_ms": ..., "help_p95_ms": ...,
"status_p50_ms": ..., "status_p95_ms": ..., "runs": N, "status_imports_ray": false,
"status_imports_litellm": false, "target_p95_ms": 250}.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_P95_MS = 250
DEMO_REQUEST = "Add due dates to tasks and a command that lists overdue tasks"
GIT = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.invalid", "-c", "core.hooksPath=/dev/null"]


def bench_env(config_home: Path) -> dict[str, str]:
    """The process environment for every command: offline cost map, an empty user config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIGENTFLOW_")}
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    env["AIGENTFLOW_CONFIG_HOME"] = str(config_home)
    # As on a user's machine: Python caches compiled modules (pip also compiles them at install).
    # Some sandboxes set PYTHONDONTWRITEBYTECODE, which recompiles every module on every start.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def make_sample_repo(target: Path) -> Path:
    """A copy of the demo's sample project, committed to a fresh git repository."""
    from aigentflow.demo import create_sample_project

    return create_sample_project(target)


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile of ``values``."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(pct / 100 * len(ordered)) - 1)]


def complete_one_run(repo: Path) -> str:
    """Drive one replay run to COMPLETED in this process (no Ray); returns its id."""
    from actors import agent_class
    from aigentflow.agents import AgentCall, AgentResult
    from aigentflow.engine import RunEngine
    from aigentflow.paths import locate_project
    from aigentflow.runner import create_run, engine_options

    def invoke(role: str, call: AgentCall) -> AgentResult:
        return agent_class(role)().run(call, None)

    paths = locate_project(repo)
    run, spec = create_run(paths, DEMO_REQUEST, {"model.name": "replay/demo"})
    finished = RunEngine(paths, run.id, invoke, engine_options(run, spec)).drive()
    if finished.state != "COMPLETED":
        raise SystemExit(f"setup run {run.id} ended in {finished.state}: {finished.error}")
    return run.id


def time_command(command: list[str], cwd: Path, env: dict[str, str], runs: int, warmups: int,
                 expect: str = "") -> list[float]:
    """Wall times in ms of ``runs`` executions of ``command``, after ``warmups`` untimed ones.

    Each execution must exit 0 and print ``expect``, so that a fast failure is never timed.
    """
    timings: list[float] = []
    for index in range(warmups + runs):
        started = time.perf_counter()
        done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
        elapsed_ms = (time.perf_counter() - started) * 1000
        if done.returncode != 0 or expect not in done.stdout:
            raise SystemExit(f"{' '.join(command)} exited {done.returncode} without {expect!r}: "
                             f"{done.stdout[-1000:]}{done.stderr[-2000:]}")
        if index >= warmups:
            timings.append(elapsed_ms)
    return timings


def imported_packages(cwd: Path, env: dict[str, str]) -> set[str]:
    """Top-level packages `aigentflow status` imports, from `python -X importtime`."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "aigentflow", "status"],
                          cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"importtime status exited {done.returncode}: {done.stderr[-2000:]}")
    packages = set()
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            packages.add(line.rsplit("|", 1)[1].strip().split(".")[0])
    return packages


def summary(prefix: str, timings: list[float]) -> dict[str, float]:
    return {
        f"{prefix}_p50_ms": round(percentile(timings, 50), 1),
        f"{prefix}_p95_ms": round(percentile(timings, 95), 1),
        f"{prefix}_min_ms": round(min(timings), 1),
        f"{prefix}_max_ms": round(max(timings), 1),
    }


def run(runs: int, warmups: int) -> dict[str, object]:
    """Set up the sample project in a temp dir, time both commands; return the measurements."""
    from aigentflow.cli.project_cmd import initialise

    executable = str(Path(sys.executable).parent / "aigentflow")
    with tempfile.TemporaryDirectory(prefix="aigentflow-cli-bench-") as directory:
        config_home = Path(directory) / "user-config"
        config_home.mkdir()
        env = bench_env(config_home)
        os.environ.update({"LITELLM_LOCAL_MODEL_COST_MAP": "True", "AIGENTFLOW_CONFIG_HOME": str(config_home)})
        repo = make_sample_repo(Path(directory) / "project")
        initialise(repo)
        run_id = complete_one_run(repo)
        help_ms = time_command([executable, "--help"], repo, env, runs, warmups, expect="status")
        status_ms = time_command([executable, "status"], repo, env, runs, warmups, expect=run_id)
        packages = imported_packages(repo, env)
    return {
        "benchmark": "cli_latency",
        **summary("help", help_ms),
        **summary("status", status_ms),
        "runs": runs,
        "status_imports_ray": "ray" in packages,
        "status_imports_litellm": "litellm" in packages,
        "target_p95_ms": TARGET_P95_MS,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="timed executions of each command")
    parser.add_argument("--warmups", type=int, default=2, help="untimed executions first")
    arguments = parser.parse_args()
    print(json.dumps(run(arguments.runs, arguments.warmups)))


if __name__ == "__main__":
    main()
