"""``POST /v1/runs``: start a run for the caller's tenant as a user would, with ``aigentflow run``.

The run is a detached subprocess (a session of its own, so stopping the server leaves it running) in the
project directory: ``python -m aigentflow run --file - --run-id ID --set run.tenant=TENANT ...``, the
request on its stdin (not in its arguments, which ``ps`` shows to every user of the machine). The server
picks the run's id, so it knows which row to wait for: it answers as soon as the run is recorded, or, if
the subprocess exits first (a check refused the run: an unknown model, the tenant over its quota), with
the subprocess's own error message. Each subprocess's output goes to
``.aigentflow/api/submissions/<run id>.log``.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aigentflow.project.paths import ProjectPaths

SETTABLE_PREFIXES = ("flags.", "skills.")
SETTABLE_KEYS = frozenset({
    "model.temperature", "model.max_calls_per_run", "model.timeout_s", "model.max_validation_retries",
    "model.max_transient_retries", "run.step_timeout_s", "git.merge_style",
})
"""What a caller may ``set`` on its run. Nothing that names a command, a file, an address or a tenant:
those are the operator's (the project's config, or ``aigentflow serve --set``), since an API client is
not trusted with the server's shell, files or network."""
POLL_S = 0.1


def settable(key: str) -> bool:
    return key in SETTABLE_KEYS or key.startswith(SETTABLE_PREFIXES)


@dataclass
class Submission:
    """A run handed to ``aigentflow run``, until it is recorded or its process ends."""

    run_id: str
    tenant_id: str
    process: subprocess.Popen[bytes]
    log: Path


@dataclass
class Submitter:
    """Starts runs in ``paths``'s project; ``overrides`` (the operator's ``serve --set``) and ``address``
    (``serve --address``) go to every run."""

    paths: ProjectPaths
    overrides: dict[str, str] = field(default_factory=dict)
    address: str | None = None
    timeout_s: float = 180.0
    _children: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def command(self, run_id: str, tenant_id: str, model: str | None, sets: dict[str, str]) -> list[str]:
        # every value joined to its option (``--model=X``): a value is never read as an option of its own
        args = [sys.executable, "-m", "aigentflow", "run", "--file=-", f"--run-id={run_id}"]
        args += [f"--set={key}={value}" for key, value in {**sets, **self.overrides, "run.tenant": tenant_id}.items()]
        if model:
            args.append(f"--model={model}")
        if self.address:
            args.append(f"--address={self.address}")
        return args

    def start(self, tenant_id: str, request: str, model: str | None, sets: dict[str, str]) -> Submission:
        """Start the run's process (its request written to its stdin); returns at once."""
        from aigentflow.store.rows import new_run_id

        self.reap()
        run_id = new_run_id()
        logs = self.paths.state_dir / "api" / "submissions"
        logs.mkdir(parents=True, exist_ok=True)
        log = logs / f"{run_id}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                self.command(run_id, tenant_id, model, sets), cwd=self.paths.root, stdin=subprocess.PIPE,
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=_child_env(),
            )
        assert process.stdin is not None
        try:
            process.stdin.write(request.encode("utf-8"))
            process.stdin.close()
        except BrokenPipeError:
            pass  # it exited before reading: its log says why
        self._children.append(process)
        return Submission(run_id, tenant_id, process, log)

    async def wait_recorded(self, submission: Submission, recorded: Any) -> tuple[str, str | None]:
        """Wait until ``recorded(run_id)`` (the run's row exists for its tenant), the process exits, or
        ``timeout_s`` passes: ("recorded", None), ("refused", its error message) or ("timeout", None)."""
        deadline = time.monotonic() + self.timeout_s
        while time.monotonic() < deadline:
            if recorded(submission.run_id):
                return "recorded", None
            if submission.process.poll() is not None:
                if recorded(submission.run_id):  # recorded, then finished or failed quickly
                    return "recorded", None
                return "refused", error_message(submission.log.read_text(errors="replace"),
                                                submission.process.returncode)
            await asyncio.sleep(POLL_S)
        return "timeout", None

    def reap(self) -> None:
        """Collect the runs' processes that ended (no zombies left behind by a long-lived server)."""
        self._children = [child for child in self._children if child.poll() is None]


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    return env


def error_message(output: str, returncode: int | None) -> str:
    """What ``aigentflow run`` said when it refused: its ``error:`` lines, else the end of its output."""
    lines = [line for line in output.splitlines() if line.strip()]
    errors = [line.removeprefix("error: ") for line in lines if line.startswith("error: ")]
    text = "\n".join(errors) if errors else "\n".join(lines[-10:])
    return (text or f"`aigentflow run` exited with status {returncode} and said nothing")[:4000]


def refusal_status(message: str) -> int:
    """429 when the run was refused for a quota or a rate, else 409 (a check of the run refused it)."""
    lowered = message.lower()
    return 429 if "quota" in lowered or "rate limit" in lowered else 409
