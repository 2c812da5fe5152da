"""Time to a first Ray task for a fresh process: attaching to a running head vs. starting Ray itself.

Case ``cluster``: a head started with ``aigentflow.cluster.head.up`` (own temp dir and state file, on
127.0.0.1); each fresh process runs ``connect_ray(None)``, which finds that head through the state
file, then one task. Case ``local``: each fresh process runs ``ray.init(address="local",
_node_ip_address="127.0.0.1")`` with a Ray temp dir of its own, then one task. Both time from
before ``import ray`` to the task's result, inside the process (``first_task_s``), and the whole
process from the parent (``process_s``, with Python's start and Ray's shutdown).

The measuring runs in a child process in a session of its own; the parent kills that session and
stops the head (``cluster.down``) whatever happens, and gives up after ``TIME_LIMIT_S``.

Prints one JSON line: {"benchmark": "cluster_connect", "runs": N, "cluster_first_task_s_p50": ...,
"local_first_task_s_p50": ..., "local_over_cluster": ..., ...}.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from cli_latency import percentile

TIME_LIMIT_S = 300

FIRST_TASK = r"""
import json, sys, time
started = time.perf_counter()
if sys.argv[1] == "cluster":
    from aigentflow.cluster.connect import connect_ray
    connect_ray(None)
    import ray
else:
    from aigentflow.cluster.env import prepare_ray_environment
    prepare_ray_environment("127.0.0.1")
    import ray
    ray.init(address="local", _node_ip_address="127.0.0.1", include_dashboard=False, log_to_driver=False)
connected = time.perf_counter()

@ray.remote
def one() -> int:
    return 1

assert ray.get(one.remote()) == 1
done = time.perf_counter()
print(json.dumps({"first_task_s": done - started, "connect_s": connected - started,
                  "gcs_address": ray.get_runtime_context().gcs_address}), flush=True)
ray.shutdown()
"""


def session_pids(session_id: int) -> list[int]:
    """Live pids whose session is ``session_id``."""
    from aigentflow.cluster.head import session_pids as live_session_pids

    return live_session_pids(session_id) or []


def kill_session(session_id: int) -> None:
    """SIGKILL every live process of ``session_id`` (one this benchmark started with start_new_session)."""
    for pid in session_pids(session_id):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def ray_child_env(config_home: Path, ray_tmp: Path) -> dict[str, str]:
    """A child's environment: its own user config and Ray temp dir, no inherited address, no drain."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS" and not k.startswith("AIGENTFLOW_")}
    env.update(AIGENTFLOW_CONFIG_HOME=str(config_home), RAY_TMPDIR=str(ray_tmp), RAY_USAGE_STATS_ENABLED="0",
               RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S="0", LITELLM_LOCAL_MODEL_COST_MAP="True")
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def run_supervised(script: str, arguments: list[str], env: dict[str, str], time_limit_s: float,
                   state_file: Path | None = None) -> dict[str, object]:
    """Run ``script --inner ...`` in a session of its own; its last JSON line. Always kills that session
    and stops the head recorded in ``state_file`` (if any) afterwards."""
    from aigentflow.cluster import head as cluster
    child = subprocess.Popen([sys.executable, script, "--inner", *arguments], env=env, stdout=subprocess.PIPE,
                             text=True, start_new_session=True)
    try:
        stdout, _ = child.communicate(timeout=time_limit_s)
    except subprocess.TimeoutExpired:
        raise SystemExit(f"{Path(script).name}: over {time_limit_s:.0f} s; stopped everything it started") from None
    finally:
        kill_session(child.pid)
        if state_file is not None and state_file.exists():
            cluster.down(state_file=state_file, timeout_s=10)
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    if child.returncode != 0 or not lines:
        raise SystemExit(f"{Path(script).name}: the measuring process exited {child.returncode}")
    return json.loads(lines[-1])


def first_task(case: str, env: dict[str, str]) -> dict[str, float | str]:
    """One fresh process reaching Ray (``case``) and running one task; kills what it leaves behind."""
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-c", FIRST_TASK, case], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        stdout, stderr = child.communicate(timeout=120)
    finally:
        kill_session(child.pid)
    if child.returncode != 0:
        raise SystemExit(f"the {case} process exited {child.returncode}: {stderr[-2000:]}")
    return {**json.loads(stdout.strip().splitlines()[-1]), "process_s": time.perf_counter() - started}


def measure(runs: int, workdir: Path, state_file: Path) -> dict[str, object]:
    """Start the head, time ``runs`` fresh processes of each case (after one untimed each), stop the head."""
    from aigentflow.cluster import head as cluster
    config_home = state_file.parent
    started = time.perf_counter()
    info = cluster.up(temp_dir=workdir / "head", state_file=state_file)
    head_start_s = time.perf_counter() - started
    timings: dict[str, list[dict[str, float | str]]] = {"cluster": [], "local": []}
    try:
        for index in range(runs + 1):
            for case in ("cluster", "local"):
                ray_tmp = Path(tempfile.mkdtemp(prefix="rt-", dir=workdir))
                result = first_task(case, ray_child_env(config_home, ray_tmp))
                if case == "cluster" and result["gcs_address"] != info.gcs_address:
                    raise SystemExit(f"connect_ray(None) reached {result['gcs_address']}, not {info.gcs_address}")
                if index:  # the first of each is a warm-up (cold disk cache, first imports)
                    timings[case].append(result)
    finally:
        cluster.down(state_file=state_file, timeout_s=10)

    def p50(case: str, key: str) -> float:
        return round(percentile([float(t[key]) for t in timings[case]], 50), 3)

    return {
        "benchmark": "cluster_connect", "runs": runs,
        "cluster_first_task_s_p50": p50("cluster", "first_task_s"),
        "local_first_task_s_p50": p50("local", "first_task_s"),
        "local_over_cluster": round(p50("local", "first_task_s") / p50("cluster", "first_task_s"), 2),
        "cluster_connect_s_p50": p50("cluster", "connect_s"), "local_init_s_p50": p50("local", "connect_s"),
        "cluster_process_s_p50": p50("cluster", "process_s"), "local_process_s_p50": p50("local", "process_s"),
        "head_start_s": round(head_start_s, 2),
    }


def supervised_main(script: str, measure_fn: Callable[[int, Path, Path], dict[str, object]], *, default_runs: int,
                    runs_help: str, prefix: str, time_limit_s: float) -> None:
    """The command line every cluster benchmark shares: the parent makes a short work directory (Ray's
    socket paths under it must stay within 107 bytes) and supervises ``script --inner``, which measures
    against the head recorded in ``<workdir>/cfg/cluster.json``. Prints the measurement's JSON line."""
    parser = argparse.ArgumentParser(description=sys.modules["__main__"].__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=default_runs, help=runs_help)
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.inner:
        print(json.dumps(measure_fn(arguments.runs, arguments.workdir, arguments.workdir / "cfg" / "cluster.json")))
        return
    with tempfile.TemporaryDirectory(prefix=prefix, dir="/tmp") as directory:
        workdir = Path(directory)
        (workdir / "cfg").mkdir()
        report = run_supervised(script, ["--runs", str(arguments.runs), "--workdir", str(workdir)],
                                ray_child_env(workdir / "cfg", workdir), time_limit_s,
                                state_file=workdir / "cfg" / "cluster.json")
    print(json.dumps(report))


def main() -> None:
    supervised_main(__file__, measure, default_runs=5, runs_help="timed fresh processes per case (after a warm-up)",
                    prefix="afcc-", time_limit_s=TIME_LIMIT_S)


if __name__ == "__main__":
    main()
