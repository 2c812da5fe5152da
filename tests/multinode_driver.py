"""A node of a multi-node Ray cluster dies under a running step; the run still completes, unchanged.

Run as a script by ``tests/test_multinode.py`` (never imported by pytest for its Ray side):

    python tests/multinode_driver.py WORKDIR [--delay-s 6] [--time-limit-s 120]

It starts a ``ray.cluster_utils.Cluster`` on 127.0.0.1 (a head with 1 CPU and no ``agents``
resource, two workers offering ``agents``), with Ray's temp dir under WORKDIR so that no other Ray
instance on the machine sees it. On a sample project it drives one run without a fault, then a
second run whose architect's node is removed while the architect waits on its (slow, replayed)
model. Prints one JSON line: {run_id, state, removed_node, architect_node_after, steps, outputs,
reference: {run_id, state, outputs}, seconds}. Stops the whole cluster in ``finally``; a watchdog
kills every process of this session if it runs out of time.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
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
from importlib import resources
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
AGENT_RESOURCE = "agents"
BUILD_RESOURCE = "builder"
BUILD_TASKS = 4
BUILD_TEST_DELAY_S = 3.0
ARCHITECT_DELAY_S = 6.0
COMPARED_OUTPUTS = ("research.md", "work_breakdown.json", "architecture.md")
REQUEST = "Add due dates to tasks and a command that lists overdue tasks"


def session_pids(session_id: int) -> list[int]:
    """Live pids whose session is ``session_id``."""
    from aigentflow.cluster.head import session_pids as live_session_pids

    return live_session_pids(session_id) or []


def kill_session(session_id: int) -> None:
    """SIGKILL every process of ``session_id`` except the caller."""
    for pid in session_pids(session_id):
        if pid != os.getpid():
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_watchdog(limit_s: float, ray_tmp: str) -> threading.Timer:
    """After ``limit_s``, kill this session's processes (the cluster) and exit: a stuck Ray call never returns."""
    def out_of_time() -> None:
        sys.stderr.write(f"multinode_driver: over {limit_s:.0f} s; killing the cluster and exiting\n")
        kill_session(os.getsid(0))
        shutil.rmtree(ray_tmp, ignore_errors=True)
        os._exit(124)

    watchdog = threading.Timer(limit_s, out_of_time)
    watchdog.daemon = True
    watchdog.start()
    return watchdog


def write_slow_cassette(repo: Path, delay_s: float) -> str:
    """The demo cassette with a slow architect, in the project's cassettes; returns its model name."""
    cassette = json.loads((resources.files("aigentflow") / "cassettes" / "demo.json").read_text())
    for entry in cassette["entries"]:
        if entry["role"] == "architect":
            entry["delay_s"] = delay_s
    target = repo / ".aigentflow" / "cassettes" / "slow-architect.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(cassette))
    return "replay/slow-architect"


def output_hashes(run_dir: Path) -> dict[str, str]:
    return {name: hashlib.sha256((run_dir / name).read_bytes()).hexdigest()
            for name in COMPARED_OUTPUTS if (run_dir / name).exists()}


def read_store(paths: Any, action: Any) -> Any:
    from aigentflow.store.sqlite import SQLiteRunStore

    store = SQLiteRunStore(paths.database, readonly=True)
    try:
        return action(store)
    finally:
        store.close()


def start_cluster() -> Any:
    """A head (1 CPU, no agents, no builds) and two workers offering the agents' and builders'
    resources, all on 127.0.0.1."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "node_ip_address": "127.0.0.1", "include_dashboard": False,
        "dashboard_agent_listen_port": free_port(),
    })
    for _ in range(2):
        cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1", resources={AGENT_RESOURCE: 10, BUILD_RESOURCE: 1})
    cluster.wait_for_nodes()
    return cluster


def node_of_agent(role: str) -> str:
    """The node id hosting the shared agent actor of ``role`` (kept to the agents' resource)."""
    import ray

    from actors.factory import NAMESPACE, agent_actor_name

    agent = ray.get_actor(agent_actor_name(role, AGENT_RESOURCE), namespace=NAMESPACE)
    return ray.get(agent.__ray_call__.remote(lambda self: ray.get_runtime_context().get_node_id()), timeout=60)


def seconds_until_dead(node_id: str, since: float, timeout_s: float) -> float | None:
    """Seconds from ``since`` until the GCS lists ``node_id`` as dead (None if not within ``timeout_s``)."""
    import ray

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if any(n["NodeID"] == node_id and not n["Alive"] for n in ray.nodes()):
            return round(time.monotonic() - since, 2)
        time.sleep(0.2)
    return None


def node_after_fault(role: str) -> str | None:
    """Where ``role``'s agent lives now, or None while Ray cannot reach it."""
    import ray

    try:
        return node_of_agent(role)
    except (ray.exceptions.RayError, ValueError):
        return None


def new_run(paths: Any, model: str) -> tuple[Any, Any]:
    from aigentflow.run.runner import create_run, engine_options

    run, spec = create_run(paths, REQUEST, {"model.name": model, "run.agent_resource": AGENT_RESOURCE})
    return run, engine_options(run, spec)


def reference_run(paths: Any, model: str) -> dict[str, Any]:
    """One run on the cluster without a fault."""
    from aigentflow.launch.driver import drive

    run, options = new_run(paths, model)
    outcome = drive(paths, run, options, resume=False)
    return {"run_id": run.id, "state": outcome.state, "error": outcome.error,
            "outputs": output_hashes(paths.run_dir(run.id))}


def wait_for_architect_call(paths: Any, run_id: str, timeout_s: float) -> None:
    """Until the run is ARCHITECTING and its architect step has begun."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        state, steps = read_store(paths, lambda s: (s.get_run(run_id).state, [x.step for x in s.steps(run_id)]))
        if state == "ARCHITECTING" and "architect" in steps:
            return
        if state in ("COMPLETED", "FAILED", "PAUSED"):
            raise SystemExit(f"run {run_id} reached {state} before its architect step could be faulted")
        time.sleep(0.1)
    raise SystemExit(f"run {run_id} did not reach its architect step within {timeout_s:.0f} s")


def faulted_run(cluster: Any, paths: Any, model: str, graceful: bool) -> dict[str, Any]:
    """A run whose architect's node is removed while the architect's model call is under way.

    ``graceful``: the node's processes get SIGTERM first (its raylet tells the GCS it is going); else
    SIGKILL, as a crashed machine: the GCS learns of it only when its health checks fail."""
    import ray

    from aigentflow.launch.driver import drive

    run, options = new_run(paths, model)
    result: dict[str, Any] = {}
    driver = threading.Thread(target=lambda: result.update(outcome=drive(paths, run, options, resume=False)),
                              daemon=True)
    driver.start()
    wait_for_architect_call(paths, run.id, timeout_s=60)
    time.sleep(1.0)  # the architect is inside its model call's delay now
    victim_id = node_of_agent("architect")
    victim = next((n for n in cluster.worker_nodes if n.node_id == victim_id), None)
    if victim is None or victim_id == ray.get_runtime_context().get_node_id():
        raise SystemExit(f"the architect runs on {victim_id}, which is not a worker node of this cluster")
    removed_at = time.monotonic()
    cluster.remove_node(victim, allow_graceful=graceful)
    dead: dict[str, float | None] = {}
    watcher = threading.Thread(target=lambda: dead.update(s=seconds_until_dead(victim_id, removed_at, 60)),
                               daemon=True)
    watcher.start()
    driver.join(timeout=90)
    if driver.is_alive():
        raise SystemExit(f"run {run.id} did not finish within 90 s of the node's removal")
    outcome = result["outcome"]
    finished_s = time.monotonic() - removed_at
    watcher.join(timeout=60)
    steps = read_store(paths, lambda s: [{"step": x.step, "attempt": x.attempt, "status": x.status}
                                         for x in s.steps(run.id)])
    return {"run_id": run.id, "state": outcome.state, "error": outcome.error, "removed_node": victim_id,
            "architect_node_after": node_after_fault("architect"), "steps": steps,
            "outputs": output_hashes(paths.run_dir(run.id)),
            "finished_after_removal_s": round(finished_s, 2), "node_declared_dead_after_s": dead.get("s")}


def build_run(cluster: Any, workdir: Path, crash: bool) -> dict[str, Any]:
    """A run whose build tasks must run on the workers (the repository lives on the head's node only, as
    far as the code knows): the branches travel as git bundles. With ``crash``, one worker is SIGKILLed
    while the tests of a build task run on it; Ray retries the task on the other worker."""
    import ray

    from aigentflow.launch.driver import drive
    from aigentflow.project.paths import locate_project
    from aigentflow.run.runner import create_run, engine_options
    from tests.worktree_project import (
        TEST_COMMAND,
        eight_tasks,
        make_project,
        worktree_overrides,
    )

    repo = make_project(workdir / "calc")
    paths = locate_project(repo)
    model = eight_tasks(workdir / "build.json", BUILD_TASKS)
    overrides = {**worktree_overrides(f"sleep {BUILD_TEST_DELAY_S:g} && {TEST_COMMAND}"), "model.name": model,
                 "run.agent_resource": AGENT_RESOURCE, "build.task_resource": BUILD_RESOURCE, "build.task_cpus": "1"}
    run, spec = create_run(paths, REQUEST, overrides)
    options = engine_options(run, spec)
    result: dict[str, Any] = {}
    driver = threading.Thread(target=lambda: result.update(outcome=drive(paths, run, options, resume=False)),
                              daemon=True)
    driver.start()
    removed = None
    if crash:
        deadline = time.monotonic() + 60
        while read_store(paths, lambda s: s.get_run(run.id).state) != "BUILDING" and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(BUILD_TEST_DELAY_S / 2 + 1.0)  # both workers are inside a task's tests now
        victim = min(cluster.worker_nodes, key=lambda n: n.node_id)
        removed = victim.node_id
        cluster.remove_node(victim, allow_graceful=False)
    driver.join(timeout=150)
    if driver.is_alive():
        raise SystemExit(f"build run {run.id} did not finish within 150 s")
    outcome = result["outcome"]
    steps = read_store(paths, lambda s: {x.step: x.output for x in s.steps(run.id) if x.status == "completed"})
    tasks = (steps.get("build") or {}).get("tasks", {})
    head = ray.get_runtime_context().get_node_id()
    return {"run_id": run.id, "state": outcome.state, "error": outcome.error, "repo": str(repo),
            "head_node": head, "removed_node": removed,
            "tasks": {t: {k: v[k] for k in ("status", "merged", "remote", "node_id", "commit")}
                      for t, v in tasks.items()}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workdir", type=Path, help="an empty directory: the sample project and Ray's files go here")
    parser.add_argument("--delay-s", type=float, default=ARCHITECT_DELAY_S,
                        help="the architect's replayed model latency")
    parser.add_argument("--scenario", choices=("agent", "build"), default="agent",
                        help="agent: lose the architect's node; build: build tasks on workers (bundles)")
    parser.add_argument("--removal", choices=("graceful", "crash", "none"), default="graceful",
                        help="how the architect's node goes: SIGTERM (graceful) or SIGKILL (crash)")
    parser.add_argument("--time-limit-s", type=float, default=120.0, help="then the watchdog kills everything")
    arguments = parser.parse_args()
    if os.getsid(0) != os.getpid():  # the cleanup kills this session: it must be one of its own
        child = subprocess.Popen([sys.executable, __file__, *sys.argv[1:]], start_new_session=True)
        try:
            return child.wait()
        finally:
            kill_session(child.pid)
    started = time.monotonic()
    workdir = arguments.workdir.resolve()
    # Ray's own files, seen by no other Ray instance here; short, as its socket paths must be (107 bytes).
    ray_tmp = tempfile.mkdtemp(prefix="afmn-", dir="/tmp")
    start_watchdog(arguments.time_limit_s, ray_tmp)
    os.environ.update(RAY_TMPDIR=ray_tmp, RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S="0",
                      RAY_USAGE_STATS_ENABLED="0", LITELLM_LOCAL_MODEL_COST_MAP="True")
    os.environ.pop("RAY_ADDRESS", None)
    # Ray workers import `actors` and `aigentflow` from the repository, whatever their working directory.
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    sys.path.insert(0, str(REPO_ROOT))
    from aigentflow.cluster.env import prepare_ray_environment

    prepare_ray_environment("127.0.0.1")
    import ray

    from aigentflow.cli.project_cmd import initialise
    from aigentflow.demo import create_sample_project
    from aigentflow.project.paths import locate_project

    cluster = None
    try:
        cluster = start_cluster()
        ray.init(address=cluster.address, namespace="aigentflow", log_to_driver=False)
        if ray.get_runtime_context().get_node_id() != cluster.head_node.node_id:
            raise SystemExit("the driver attached to a worker node; the Orchestrator must live on the head")
        if arguments.scenario == "build":
            report = build_run(cluster, workdir, crash=arguments.removal == "crash")
            reference = None
        else:
            repo = create_sample_project(workdir / "project")
            initialise(repo)
            paths = locate_project(repo)
            model = write_slow_cassette(repo, arguments.delay_s)
            reference = reference_run(paths, model)
            report = {**faulted_run(cluster, paths, model, graceful=arguments.removal == "graceful"),
                      "repo": str(repo)}
    finally:
        if ray.is_initialized():
            ray.shutdown()
        if cluster is not None:
            cluster.shutdown()
        shutil.rmtree(ray_tmp, ignore_errors=True)
    print(json.dumps({**report, "reference": reference, "seconds": round(time.monotonic() - started, 1)}),
          flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
