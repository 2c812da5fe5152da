"""Latency of runs submitted as Ray jobs: submit -> the run's first transition -> COMPLETED.

Starts a head with ``aigentflow.cluster.head.up`` (own temp dir and state file, dashboard on, 127.0.0.1,
the virtualenv's bin first on PATH so that the job's ``aigentflow`` is this one), initialises the
sample project, then submits ``aigentflow run`` jobs one after another with
``aigentflow.cluster.jobs.submit_run(..., model="replay/demo")``. Times come from the project's
store (SQLiteRunStore) against the wall clock at submission: when the run was recorded (CREATED),
its first transition after that (CREATED -> ANALYZING), and COMPLETED; also when Ray reports the
job SUCCEEDED. The first job is a warm-up (it starts the agent actors) and is reported apart.

The measuring runs in a child in a session of its own; the parent kills it and stops the head
whatever happens, after ``TIME_LIMIT_S`` at most.

Prints one JSON line: {"benchmark": "job_submission", "runs": N, "submit_to_first_transition_s_p50":
..., "submit_to_completed_s_p50": ..., ...}.
"""

from __future__ import annotations

import os
import sys
import time
from datetime import datetime
from pathlib import Path

from cli_latency import DEMO_REQUEST, make_sample_repo, percentile
from cluster_connect import supervised_main

TIME_LIMIT_S = 300
RUN_TIMEOUT_S = 120


def wait_for_job_server(url: str, timeout_s: float = 60) -> None:
    """Until the dashboard's job API answers (401/403 count: it is up and asks for Ray's token)."""
    from aigentflow.cluster.head import http_status

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if http_status(f"{url}/api/version") in (200, 401, 403):
            return
        time.sleep(0.2)
    raise SystemExit(f"the job server at {url} did not answer within {timeout_s:.0f} s")


def seconds_after(stamp: str, since: float) -> float:
    return datetime.fromisoformat(stamp).timestamp() - since


def one_job(url: str, repo: Path, database: Path) -> dict[str, float]:
    """Submit one run as a job and follow it in the store until it is COMPLETED."""
    from aigentflow.cluster.jobs import submit_run, wait
    from aigentflow.store.sqlite import SQLiteRunStore

    def runs() -> dict[str, str]:
        store = SQLiteRunStore(database, readonly=True)
        try:
            return {run.id: run.state for run in store.list_runs()}
        finally:
            store.close()

    known = set(runs())
    submitted_at = time.time()
    job_id = submit_run(url, str(repo), DEMO_REQUEST, model="replay/demo")
    submit_call_s = time.time() - submitted_at
    deadline = time.monotonic() + RUN_TIMEOUT_S
    state = ""
    while time.monotonic() < deadline:
        new = {run_id: state for run_id, state in runs().items() if run_id not in known}
        state = next(iter(new.values()), "")
        if state in ("COMPLETED", "FAILED", "PAUSED", "CANCELLED"):
            break
        time.sleep(0.05)
    if state != "COMPLETED":
        raise SystemExit(f"job {job_id}: its run is {state or 'not recorded'} after {RUN_TIMEOUT_S} s")
    job_status = wait(url, job_id, timeout_s=60, poll_s=0.1)
    job_end_s = time.time() - submitted_at
    if job_status != "SUCCEEDED":
        raise SystemExit(f"job {job_id} ended {job_status}")
    store = SQLiteRunStore(database, readonly=True)
    try:
        transitions = store.transitions(next(iter(new)))
    finally:
        store.close()
    created = next(t for t in transitions if t.to_state == "CREATED")
    first_move = next(t for t in transitions if t.from_state == "CREATED")
    completed = next(t for t in transitions if t.to_state == "COMPLETED")
    return {"submit_call_s": submit_call_s, "recorded_s": seconds_after(created.at, submitted_at),
            "first_transition_s": seconds_after(first_move.at, submitted_at),
            "completed_s": seconds_after(completed.at, submitted_at), "job_succeeded_s": job_end_s}


def measure(runs: int, workdir: Path, state_file: Path) -> dict[str, object]:
    """Start the head, submit 1 + ``runs`` jobs, stop the head."""
    from aigentflow.cli.project_cmd import initialise
    from aigentflow.cluster import head as cluster
    from aigentflow.project.paths import locate_project

    repo = make_sample_repo(workdir / "project")
    initialise(repo)
    paths = locate_project(repo)
    # As in an activated virtualenv: the head's jobs run `aigentflow` from the head's PATH.
    os.environ["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    started = time.perf_counter()
    info = cluster.up(temp_dir=workdir / "head", state_file=state_file)
    try:
        assert info.dashboard_url is not None
        wait_for_job_server(info.dashboard_url)
        head_start_s = time.perf_counter() - started
        cold = one_job(info.dashboard_url, repo, paths.database)
        measured = [one_job(info.dashboard_url, repo, paths.database) for _ in range(runs)]
    finally:
        cluster.down(state_file=state_file, timeout_s=10)

    def p50(key: str) -> float:
        return round(percentile([m[key] for m in measured], 50), 3)

    return {
        "benchmark": "job_submission", "runs": runs,
        "submit_to_first_transition_s_p50": p50("first_transition_s"),
        "submit_to_completed_s_p50": p50("completed_s"),
        "submit_to_run_recorded_s_p50": p50("recorded_s"),
        "submit_to_job_succeeded_s_p50": p50("job_succeeded_s"),
        "submit_call_s_p50": p50("submit_call_s"),
        "cold_first_job": {key: round(value, 3) for key, value in cold.items()},
        "head_start_s": round(head_start_s, 2),
    }


def main() -> None:
    supervised_main(__file__, measure, default_runs=3, runs_help="timed jobs after the warm-up job", prefix="afjs-",
                    time_limit_s=TIME_LIMIT_S)


if __name__ == "__main__":
    main()
