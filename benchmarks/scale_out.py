"""Scale-out of agent steps over Ray nodes: K parallel Analyst steps on 1, 2 and 4 nodes.

A ``ray.cluster_utils.Cluster`` on 127.0.0.1 (1 CPU a node, Ray's temp dir its own) grows from 1
to 2 to 4 nodes. For each size, K Analyst actors (``actors.analyst.Analyst``, ``num_cpus=0``,
``scheduling_strategy="SPREAD"``) each run the real analyze step (prompt, replayed model call
through litellm, validation, research.md) on the sample project, all at once; the replay cassette
makes every model call wait ``delay_s``, so the work is mostly latency, not CPU. Reported per size:
the p50 wall time of a batch of K calls (after a warm-up batch), the actors' start time, how the
actors were spread, and the speed-up and efficiency against 1 node. All nodes share this machine's
2 cores, so expect overhead rather than speed-up.

The measuring runs in a child in a session of its own; the parent kills that session (every node)
whatever happens, after ``TIME_LIMIT_S`` at most.

Prints one JSON line: {"benchmark": "scale_out", "k": 8, "delay_s": 0.5, "configs": [{"nodes": 1,
"batch_wall_s_p50": ..., "speedup": 1.0, "efficiency": 1.0, ...}, ...]}.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import tempfile
import time
from collections import Counter
from importlib import resources
from pathlib import Path
from typing import Any

from cli_latency import DEMO_REQUEST, make_sample_repo, percentile
from cluster_connect import ray_child_env, run_supervised

TIME_LIMIT_S = 360
NODE_COUNTS = (1, 2, 4)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def analyze_calls(workdir: Path, k: int, delay_s: float) -> list[Any]:
    """K analyze calls on the sample project, as the engine builds them, with a slowed replay model."""
    from aigentflow.cli.project_cmd import initialise
    from aigentflow.project.facts import ProjectFacts, render_facts, snapshot_repository
    from aigentflow.project.paths import locate_project
    from aigentflow.prompts.compose import load_layers
    from aigentflow.run.protocol import AgentCall
    from aigentflow.run.runner import plan_run
    from aigentflow.store.sqlite import SQLiteRunStore

    repo = make_sample_repo(workdir / "project")
    initialise(repo)
    paths = locate_project(repo)
    cassette = json.loads((resources.files("aigentflow") / "cassettes" / "demo.json").read_text())
    for entry in cassette["entries"]:
        entry["delay_s"] = delay_s
    (paths.cassettes_dir / "latency.json").parent.mkdir(parents=True, exist_ok=True)
    (paths.cassettes_dir / "latency.json").write_text(json.dumps(cassette))
    spec = plan_run(paths, DEMO_REQUEST, {"model.name": "replay/latency"}).spec
    store = SQLiteRunStore(paths.database, readonly=True)
    try:
        facts = (store.get_project() or {"facts": {}})["facts"]
    finally:
        store.close()
    inputs = {"facts": facts, "snapshot": snapshot_repository(paths.root).model_dump(mode="json")}
    context, layers = render_facts(ProjectFacts.model_validate(facts)), load_layers(paths.prompts_dir)
    return [AgentCall(run_id=f"scale-out-{index}", step="analyze", attempt=1, request=DEMO_REQUEST,
                      project_context=context, layers=layers, model=spec, inputs=inputs) for index in range(k)]


def run_batch(agents: list[Any], calls: list[Any]) -> float:
    """All calls at once, one per agent; the batch's wall time. Any failed step stops the benchmark."""
    import ray

    started = time.perf_counter()
    results = ray.get([agent.run.remote(call, None) for agent, call in zip(agents, calls, strict=True)], timeout=120)
    wall_s = time.perf_counter() - started
    failed = [r.error for r in results if not r.ok]
    if failed:
        raise SystemExit(f"{len(failed)} analyze step(s) failed: {failed[0]}")
    return wall_s


def measure_size(nodes: int, calls: list[Any], batches: int) -> dict[str, Any]:
    """K fresh Analyst actors spread over the cluster as it is now; their start and batch times."""
    import ray

    from actors.analyst import Analyst

    started = time.perf_counter()
    agents = [ray.remote(Analyst).options(num_cpus=0, scheduling_strategy="SPREAD").remote() for _ in calls]
    ray.get([agent.ping.remote() for agent in agents], timeout=180)
    actors_ready_s = time.perf_counter() - started
    placement = ray.get([agent.__ray_call__.remote(lambda self: ray.get_runtime_context().get_node_id())
                         for agent in agents])
    try:
        run_batch(agents, calls)  # warm-up: first model call in each actor
        walls = [run_batch(agents, calls) for _ in range(batches)]
    finally:
        for agent in agents:
            ray.kill(agent)
    return {"nodes": nodes, "batch_wall_s_p50": round(percentile(walls, 50), 3),
            "batch_wall_s_min": round(min(walls), 3), "actors_ready_s": round(actors_ready_s, 2),
            "actors_per_node": sorted(Counter(placement).values(), reverse=True)}


def measure(k: int, delay_s: float, batches: int, workdir: Path) -> dict[str, Any]:
    """Grow a cluster through ``NODE_COUNTS`` and measure each size; shut it down at the end."""
    from aigentflow.cluster.env import prepare_ray_environment

    prepare_ray_environment("127.0.0.1")
    import ray
    from ray.cluster_utils import Cluster

    calls = analyze_calls(workdir, k, delay_s)
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "node_ip_address": "127.0.0.1", "include_dashboard": False,
        "dashboard_agent_listen_port": free_port()})
    configs = []
    try:
        ray.init(address=cluster.address, log_to_driver=False)
        for nodes in NODE_COUNTS:
            while len(cluster.list_all_nodes()) < nodes:
                cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1")
            cluster.wait_for_nodes()
            configs.append(measure_size(nodes, calls, batches))
    finally:
        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()
    base = configs[0]["batch_wall_s_p50"]
    for config in configs:
        config["speedup"] = round(base / config["batch_wall_s_p50"], 2)
        config["efficiency"] = round(config["speedup"] / config["nodes"], 2)
    return {"benchmark": "scale_out", "k": k, "delay_s": delay_s, "batches": batches,
            "ideal_batch_s": delay_s, "cpus": os.cpu_count(), "configs": configs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k", type=int, default=8, help="parallel analyze steps (one actor each)")
    parser.add_argument("--delay-s", type=float, default=0.5, help="the replayed model's latency per call")
    parser.add_argument("--batches", type=int, default=3, help="timed batches per cluster size (after a warm-up)")
    parser.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.inner:
        print(json.dumps(measure(arguments.k, arguments.delay_s, arguments.batches, arguments.workdir)))
        return
    # Short: Ray's socket paths under it must stay within 107 bytes.
    with tempfile.TemporaryDirectory(prefix="afso-", dir="/tmp") as directory:
        workdir = Path(directory)
        (workdir / "cfg").mkdir()
        report = run_supervised(__file__, ["--k", str(arguments.k), "--delay-s", str(arguments.delay_s),
                                           "--batches", str(arguments.batches), "--workdir", str(workdir)],
                                ray_child_env(workdir / "cfg", workdir), TIME_LIMIT_S)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
