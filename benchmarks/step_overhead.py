"""Per-step orchestration overhead of a real run on a real Ray head (replay model, so models cost ~0).

Starts a Ray head on 127.0.0.1 in its own process group (killed at the end), runs the MVP pipeline
once to warm the agent actors, then N more times. Per measured run: wall time of `drive`, model
time (sum of the `chat ...` spans), completed steps; overhead per step = (wall - model) / steps.
`orchestrator_start_ms` is the time from calling `drive` to the run's first transition after
CREATED: handing the run to the node's run host (started by the warm-up run, then kept) plus
looking up the warm agents.

Prints one JSON line: {"benchmark": "step_overhead", "runs": N, "steps_per_run": 3,
"overhead_per_step_ms_p50": ..., "overhead_per_step_ms_p95": ..., "run_wall_s_p50": ...,
"cold_first_run_s": ..., "ray_start_s": ..., "target_ms": 20}.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import datetime
from pathlib import Path
from statistics import median

from cli_latency import DEMO_REQUEST, make_sample_repo, percentile

from aigentflow.project.paths import ProjectPaths

TARGET_MS = 20
TIME_LIMIT_S = 170


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def ray_head(log_file: Path, time_limit_s: float) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A Ray head on 127.0.0.1 in its own process group; yields (address, process), kills the group after.

    A watchdog kills the group and this process after ``time_limit_s``: a driver stuck inside Ray's
    C++ client never returns to Python, so a signal handler would not be enough.
    """
    from aigentflow.cluster.env import prepare_ray_environment

    port = free_port()
    address = f"127.0.0.1:{port}"
    # No drain on SIGTERM: with the detached agent actors alive it would wait its full 30 s.
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0"}
    prepare_ray_environment(address, env)
    head = subprocess.Popen(
        [str(Path(sys.executable).parent / "ray"), "start", "--head", "--block", "--node-ip-address=127.0.0.1",
         f"--port={port}", "--include-dashboard=false", "--disable-usage-stats", "--num-cpus=2"],
        stdout=log_file.open("w"), stderr=subprocess.STDOUT, start_new_session=True, env=env,
    )

    def out_of_time() -> None:
        sys.stderr.write(f"step_overhead: over {time_limit_s:.0f} s; killing the Ray head and exiting\n")
        os.killpg(head.pid, signal.SIGKILL)
        shutil.rmtree(log_file.parent, ignore_errors=True)
        os._exit(124)

    watchdog = threading.Timer(time_limit_s, out_of_time)
    watchdog.daemon = True
    watchdog.start()
    try:
        yield address, head
    finally:
        watchdog.cancel()
        # SIGTERM to `ray start` alone: it stops its children itself (the group is the fallback).
        head.terminate()
        try:
            head.wait(timeout=30)
        except subprocess.TimeoutExpired:
            head.kill()
            head.wait()
        with suppress(ProcessLookupError):
            os.killpg(head.pid, signal.SIGKILL)


def connect_when_up(address: str, head: subprocess.Popen[bytes], log_file: Path) -> None:
    """Connect this process to the head as soon as its GCS port accepts connections."""
    from aigentflow.cluster.connect import connect_ray, prepare_ray_environment

    prepare_ray_environment(address)  # before the first `import ray`: keeps the client on loopback
    host, port = address.split(":")
    while True:
        try:
            with socket.create_connection((host, int(port)), timeout=1):
                break
        except OSError:
            if head.poll() is not None:
                raise SystemExit(f"ray head at {address} failed: {log_file.read_text()[-2000:]}") from None
            time.sleep(0.1)
    connect_ray(address)


def iso_seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp).timestamp()


def measure_run(paths: ProjectPaths) -> dict[str, float]:
    """Create and drive one replay run; its wall time, model time, steps and Orchestrator start."""
    from aigentflow.launch.driver import drive
    from aigentflow.run.runner import create_run, engine_options
    from aigentflow.store.sqlite import SQLiteRunStore
    from aigentflow.tracing.reader import read_spans

    run, spec = create_run(paths, DEMO_REQUEST, {"model.name": "replay/demo"})
    options = engine_options(run, spec)
    called_at = time.time()
    started = time.perf_counter()
    outcome = drive(paths, run, options, resume=False)
    wall_s = time.perf_counter() - started
    if outcome.state != "COMPLETED":
        raise SystemExit(f"run {run.id} ended in {outcome.state}: {outcome.error}")
    store = SQLiteRunStore(paths.database, readonly=True)
    try:
        steps = sum(1 for step in store.steps(run.id) if step.status == "completed")
        first_move = next(t for t in store.transitions(run.id) if t.from_state == "CREATED")
    finally:
        store.close()
    model_ns = sum(span["end_ns"] - span["start_ns"] for span in read_spans(paths.traces_dir, run.id)
                   if span["name"].startswith("chat "))
    return {"wall_s": wall_s, "model_s": model_ns / 1e9, "steps": steps,
            "orchestrator_start_s": max(0.0, iso_seconds(first_move.at) - called_at)}


def run(runs: int) -> dict[str, object]:
    """Start Ray, run the pipeline 1 + ``runs`` times in a temp project; return the measurements."""
    from aigentflow.cli.project_cmd import initialise
    from aigentflow.project.paths import locate_project

    started_at = time.time()
    with tempfile.TemporaryDirectory(prefix="aigentflow-step-bench-") as directory:
        config_home = Path(directory) / "user-config"
        config_home.mkdir()
        os.environ.update({"LITELLM_LOCAL_MODEL_COST_MAP": "True", "AIGENTFLOW_CONFIG_HOME": str(config_home)})
        repo = make_sample_repo(Path(directory) / "project")
        initialise(repo)
        paths = locate_project(repo)
        log_file = Path(directory) / "ray-head.log"
        started = time.perf_counter()
        with ray_head(log_file, TIME_LIMIT_S - (time.time() - started_at)) as (address, head):
            try:
                connect_when_up(address, head, log_file)
                ray_start_s = time.perf_counter() - started
                cold = measure_run(paths)
                measured = []
                for _ in range(runs):
                    measured.append(measure_run(paths))
            finally:
                ray = sys.modules.get("ray")
                if ray is not None and ray.is_initialized():
                    ray.shutdown()
    per_step_ms = [(m["wall_s"] - m["model_s"]) / m["steps"] * 1000 for m in measured]
    per_step_excl_start_ms = [(m["wall_s"] - m["model_s"] - m["orchestrator_start_s"]) / m["steps"] * 1000
                              for m in measured]
    return {
        "benchmark": "step_overhead",
        "runs": runs,
        "steps_per_run": int(median(m["steps"] for m in measured)),
        "overhead_per_step_ms_p50": round(percentile(per_step_ms, 50), 1),
        "overhead_per_step_ms_p95": round(percentile(per_step_ms, 95), 1),
        "overhead_per_step_excl_orchestrator_start_ms_p50": round(percentile(per_step_excl_start_ms, 50), 1),
        "orchestrator_start_ms_p50": round(percentile([m["orchestrator_start_s"] * 1000 for m in measured], 50), 1),
        "model_ms_per_run_p50": round(percentile([m["model_s"] * 1000 for m in measured], 50), 1),
        "run_wall_s_p50": round(percentile([m["wall_s"] for m in measured], 50), 3),
        "run_wall_s_p95": round(percentile([m["wall_s"] for m in measured], 95), 3),
        "cold_first_run_s": round(cold["wall_s"], 3),
        "ray_start_s": round(ray_start_s, 2),
        "benchmark_total_s": round(time.time() - started_at, 1),
        "target_ms": TARGET_MS,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="measured runs after the warm-up run")
    arguments = parser.parse_args()
    print(json.dumps(run(arguments.runs)))


if __name__ == "__main__":
    main()
