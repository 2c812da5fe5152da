"""Parallel build speed-up: N independent tasks, each running a CPU-bound test suite, as Ray tasks
side by side versus one after another.

Each task has its own worktree of one repository (made with ``aigentflow.gitops``) whose test
command burns about ``--work-s`` seconds of one core; a task is ``aigentflow.checks.build.execute_task``,
exactly what a run's build step runs (edit guard, sandboxed test command, outcome). Sequential: the
N tasks in this process one after another. Parallel: the same N tasks as Ray tasks with
``num_cpus=1`` on a local Ray (127.0.0.1, its own temp dir, one CPU per core), after a warm-up
round so that worker start is not counted. Target: speed-up at least 0.8 x the number of cores.

Prints one JSON line: {"benchmark": "parallel_build", "cores": C, "tasks": N, "sequential_s": ...,
"parallel_s": ..., "speedup": ..., "target_speedup": 0.8*C, ...}.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BURN = "python3 -c \"import time; t=time.process_time(); n=0\nwhile time.process_time()-t < {s}: n+=1\""
GIT_ENV = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@x", "GIT_COMMITTER_NAME": "b",
           "GIT_COMMITTER_EMAIL": "b@x"}


def make_specs(root: Path, tasks: int, work_s: float, node_id: str) -> list:
    from aigentflow.checks.build import BuildSpec
    from aigentflow.gitops.worktrees import Worktrees

    root.mkdir()
    (root / "README.md").write_text("bench\n")
    for args in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-qm", "base"]):
        subprocess.run(["git", *args], cwd=root, check=True, env=GIT_ENV, capture_output=True)
    trees = Worktrees(root)
    specs = []
    for i in range(tasks):
        wt = trees.ensure(trees.path_for("bench", f"task-{i}"), f"bench/task-{i}", "main")
        specs.append(BuildSpec("bench", f"T{i}", f"task {i}", str(wt.path), wt.branch, wt.head, node_id,
                               BURN.format(s=work_s), {"timeout_s": 120.0}))
    return specs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=0, help="default: 2 x cores")
    parser.add_argument("--work-s", type=float, default=1.0)
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    tasks = args.tasks or 2 * cores
    from aigentflow.cluster.env import prepare_ray_environment

    prepare_ray_environment("127.0.0.1")
    import ray

    from aigentflow.checks.build import execute_task

    ray_tmp = tempfile.mkdtemp(prefix="afpb", dir="/tmp")
    work = Path(tempfile.mkdtemp(prefix="af-bench-build-"))
    try:
        ray.init(address="local", _node_ip_address="127.0.0.1", num_cpus=cores, include_dashboard=False,
                 log_to_driver=False, _temp_dir=ray_tmp)
        node = ray.get_runtime_context().get_node_id()
        specs = make_specs(work / "repo", tasks, args.work_s, node)
        started = time.perf_counter()
        sequential = [execute_task(spec, {"edits": []}, node) for spec in specs]
        sequential_s = time.perf_counter() - started
        remote = ray.remote(num_cpus=1)(lambda spec: execute_task(spec, {"edits": []},
                                                                  ray.get_runtime_context().get_node_id()))
        ray.get([remote.remote(spec) for spec in specs])  # warm-up: start the workers
        started = time.perf_counter()
        parallel = ray.get([remote.remote(spec) for spec in specs])
        parallel_s = time.perf_counter() - started
        ok = all(o.ok for o in sequential + parallel)
        speedup = sequential_s / parallel_s
        print(json.dumps({"benchmark": "parallel_build", "cores": cores, "tasks": tasks, "work_s": args.work_s,
                          "all_passed": ok, "sequential_s": round(sequential_s, 3), "parallel_s": round(parallel_s, 3),
                          "speedup": round(speedup, 3), "target_speedup": round(0.8 * cores, 2),
                          "met": speedup >= 0.8 * cores,
                          "isolation": sequential[0].tests["isolation"] if sequential[0].tests else {}}))
    finally:
        ray.shutdown()
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(ray_tmp, ignore_errors=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
