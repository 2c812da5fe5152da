"""CLI start-up latency: `aigentflow --help` and `aigentflow status` as whole processes.

What is timed is what a user gets from `pip install .`: the work tree built as a wheel and installed,
not editable, into a scratch virtual environment that takes its dependencies from this one. (An
editable install's import finder makes `python -c pass` ~15 ms slower, but imports little that typer
does not import anyway.) ``--in-place`` times this environment's own `aigentflow` instead.

`status` runs in the demo's sample repository holding the demo's run, completed (the demo's settings
and replay model, driven as `aigentflow demo` drives it: on a local Ray instance, which is shut down
before anything is timed), so it prints the report a user sees after `aigentflow demo`. Also checks,
with `python -X importtime`, that `status` imports neither ray nor litellm.

Prints one JSON line: {"benchmark": "cli_latency", "help_p50_ms": ..., "help_p95_ms": ...,
"status_p50_ms": ..., "status_p95_ms": ..., "runs": N, "status_imports_ray": false,
"status_imports_litellm": false, "target_p95_ms": 150, "goal_p95_ms": 250, "install": "wheel"}.
The goal (issue 11) is p95 < 250 ms; the target leaves headroom for noisy machines.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

TARGET_P95_MS = 150
GOAL_P95_MS = 250
SOURCE = Path(__file__).resolve().parents[1]
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
    """Drive the demo's run to COMPLETED as `aigentflow demo` does; returns its id.

    The demo's own settings: its replay cassette answers only the prompts it was recorded for. The
    demo builds in worktrees with Ray tasks, so the run goes through a local Ray instance (or a live
    local cluster), which is shut down again before anything is timed."""
    from aigentflow.demo import demo_settings
    from aigentflow.launch.driver import connect, drive
    from aigentflow.project.paths import locate_project
    from aigentflow.run.runner import create_run, engine_options

    paths = locate_project(repo)
    run, spec = create_run(paths, DEMO_REQUEST, {**demo_settings(), "model.name": "replay/demo"})
    connect(None)
    try:
        outcome = drive(paths, run, engine_options(run, spec), resume=False)
    finally:
        import ray  # after connect, which sets what Ray reads at import time

        ray.shutdown()
    if outcome.state != "COMPLETED":
        raise SystemExit(f"setup run {run.id} ended in {outcome.state}: {outcome.error}")
    return run.id


def quiet(*command: str) -> str:
    """Run ``command``; its stdout, stripped (CalledProcessError, with its output, if it fails)."""
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip()


def install_wheel(target: Path) -> Path:
    """`pip install .` of the work tree, not editable, into a new virtual environment at ``target``
    whose dependencies are this environment's (a ``.pth`` file names its site-packages); returns
    that environment's `aigentflow` script."""
    source = target / "source"
    source.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(SOURCE / name, source / name)
    for package in ("aigentflow", "actors"):  # the packages pyproject.toml ships
        shutil.copytree(SOURCE / package, source / package,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".pytest_cache"))
    dist = target / "dist"
    venv = target / "venv"
    python = venv / "bin" / "python"
    try:
        quiet(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(dist), str(source))
        quiet(sys.executable, "-m", "venv", "--without-pip", str(venv))
        purelib = Path(quiet(str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"))
        here = dict.fromkeys([sysconfig.get_path("purelib"), sysconfig.get_path("platlib")])
        (purelib / "zz-benchmark-dependencies.pth").write_text("".join(f"{path}\n" for path in here))
        wheel = next(dist.glob("aigentflow-*.whl"))
        quiet(sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", str(wheel))
    except subprocess.CalledProcessError as exc:
        raise SystemExit(f"installing the work tree failed ({' '.join(exc.cmd)}): {exc.stderr[-2000:]}\n"
                         "Use --in-place to time this environment's aigentflow instead.") from None
    return venv / "bin" / "aigentflow"


def time_command(command: list[str], cwd: Path, env: dict[str, str], runs: int, warmups: int,
                 expect: str = "") -> list[float]:
    """Wall times in ms of ``runs`` executions of ``command``, after ``warmups`` untimed ones.

    Each execution must exit 0 and print ``expect``, so that a fast failure is never timed.
    """
    timings: list[float] = []
    for index in range(warmups + runs):
        started = time.perf_counter()
        done = subprocess.run(command, check=False, cwd=cwd, env=env, capture_output=True, text=True)
        elapsed_ms = (time.perf_counter() - started) * 1000
        if done.returncode != 0 or expect not in done.stdout:
            raise SystemExit(f"{' '.join(command)} exited {done.returncode} without {expect!r}: "
                             f"{done.stdout[-1000:]}{done.stderr[-2000:]}")
        if index >= warmups:
            timings.append(elapsed_ms)
    return timings


def imported_packages(python: Path, cwd: Path, env: dict[str, str]) -> set[str]:
    """Top-level packages `aigentflow status` imports, from `python -X importtime`."""
    done = subprocess.run([str(python), "-X", "importtime", "-m", "aigentflow", "status"], check=False,
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


def run(runs: int, warmups: int, in_place: bool = False) -> dict[str, object]:
    """Set up the sample project in a temp dir, time both commands; return the measurements."""
    from aigentflow.cli.project_cmd import initialise

    with tempfile.TemporaryDirectory(prefix="aigentflow-cli-bench-") as directory:
        script = Path(sys.executable).parent / "aigentflow" if in_place else install_wheel(Path(directory) / "install")
        executable = str(script)
        config_home = Path(directory) / "user-config"
        config_home.mkdir()
        env = bench_env(config_home)
        os.environ.update({"LITELLM_LOCAL_MODEL_COST_MAP": "True", "AIGENTFLOW_CONFIG_HOME": str(config_home)})
        repo = make_sample_repo(Path(directory) / "project")
        initialise(repo)
        run_id = complete_one_run(repo)
        help_ms = time_command([executable, "--help"], repo, env, runs, warmups, expect="status")
        status_ms = time_command([executable, "status"], repo, env, runs, warmups, expect=run_id)
        packages = imported_packages(script.parent / "python", repo, env)
    return {
        "benchmark": "cli_latency",
        **summary("help", help_ms),
        **summary("status", status_ms),
        "runs": runs,
        "status_imports_ray": "ray" in packages,
        "status_imports_litellm": "litellm" in packages,
        "target_p95_ms": TARGET_P95_MS,
        "goal_p95_ms": GOAL_P95_MS,
        "install": "in-place" if in_place else "wheel",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30, help="timed executions of each command")
    parser.add_argument("--warmups", type=int, default=2, help="untimed executions first")
    parser.add_argument("--in-place", action="store_true",
                        help="time this environment's aigentflow (e.g. an editable install), not a wheel")
    arguments = parser.parse_args()
    print(json.dumps(run(arguments.runs, arguments.warmups, arguments.in_place)))


if __name__ == "__main__":
    main()
