"""Runs as Ray jobs: submit ``aigentflow run`` to a cluster's job server and follow the jobs.

A job runs on the cluster's head node, in the project's directory there (the run's SQLite and
trace files live with the project), as ``aigentflow run``: the same code path as a laptop run. Ray's
token authentication is used as Ray configured it (``~/.ray/auth_token``).
"""

from __future__ import annotations

import os
import secrets
import shlex
import time
from collections.abc import Sequence
from typing import Any

from aigentflow.cluster.env import prepare_ray_environment
from aigentflow.exceptions import UsageError

DEFAULT_DASHBOARD = "http://127.0.0.1:8265"
TERMINAL = ("SUCCEEDED", "FAILED", "STOPPED")


def job_server_address(address: str | None) -> str:
    """``--address``, else ``RAY_API_SERVER_ADDRESS``, else an http ``RAY_ADDRESS``, else the local default."""
    for candidate in (address, os.environ.get("RAY_API_SERVER_ADDRESS"), os.environ.get("RAY_ADDRESS")):
        if candidate and candidate.startswith(("http://", "https://")):
            return candidate.rstrip("/")
        if candidate and candidate is address:
            raise UsageError(f"{address!r} is not a job server address; give the dashboard's URL, e.g. "
                             "http://127.0.0.1:8265 (`aigentflow dashboard` prints it).")
    return DEFAULT_DASHBOARD


def client(address: str | None) -> Any:
    """A ``JobSubmissionClient`` for the cluster, or a UsageError saying what did not answer."""
    url = job_server_address(address)
    prepare_ray_environment(url)
    from ray.job_submission import JobSubmissionClient

    try:
        return JobSubmissionClient(url)
    except Exception as exc:  # noqa: BLE001 - requests' and Ray's connection errors alike
        raise UsageError(f"no Ray job server answers at {url} ({type(exc).__name__}: {str(exc)[:200]}). "
                         "Start one with `aigentflow cluster up`, or pass --address http://HEAD:8265.") from None


def run_entrypoint(project_root: str, request: str, model: str | None, sets: Sequence[str]) -> str:
    """The shell command a job runs: `aigentflow run` in the project's directory on the head node."""
    parts = ["aigentflow", "run", request]
    if model:
        parts += ["--model", model]
    for item in sets:
        parts += ["--set", item]
    return f"cd {shlex.quote(project_root)} && " + " ".join(shlex.quote(p) for p in parts)


def submit_run(address: str | None, project_root: str, request: str, *, model: str | None = None,
               sets: Sequence[str] = ()) -> str:
    """Submit a feature run; returns the job's submission id."""
    job_id = f"aigentflow-{time.strftime('%y%m%d-%H%M%S')}-{secrets.token_hex(2)}"
    return client(address).submit_job(
        entrypoint=run_entrypoint(project_root, request, model, sets),
        submission_id=job_id,
        metadata={"aigentflow": "run", "project": project_root},
        runtime_env={"env_vars": {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "PYTHONUNBUFFERED": "1"}},
    )


def describe(job: Any) -> dict[str, Any]:
    return {
        "job_id": job.submission_id or job.job_id,
        "status": str(getattr(job.status, "value", job.status)),
        "entrypoint": job.entrypoint,
        "start_time": job.start_time,
        "end_time": job.end_time,
        "message": job.message,
        "metadata": job.metadata or {},
    }


def wait(address: str | None, job_id: str, timeout_s: float, poll_s: float = 0.5) -> str:
    """Wait for the job to end; returns its final status (or the current one at the timeout)."""
    jobs = client(address)
    deadline = time.monotonic() + timeout_s
    status = str(jobs.get_job_status(job_id).value)
    while status not in TERMINAL and time.monotonic() < deadline:
        time.sleep(poll_s)
        status = str(jobs.get_job_status(job_id).value)
    return status
