"""CLI latency, measured: `aigentflow runs` and `aigentflow status` timed as whole processes in the project.

Nothing records how long a user's commands take, so the MVP dashboard's "CLI latency p95" is
measured when the dashboard is computed: a few runs of the read-only commands a user types most,
started the way a user starts them (the installed `aigentflow` script beside this Python).
"""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time
from pathlib import Path

COMMANDS = (("runs",), ("status",))
"""Timed in turn; `status` only once the project has a run (before that it is an error, exit 2)."""


def command_prefix() -> list[str]:
    """How to start `aigentflow`: the script installed beside this interpreter, else ``python -m``."""
    script = Path(sys.executable).parent / "aigentflow"
    return [str(script)] if script.exists() else [sys.executable, "-m", "aigentflow"]


def measure(project_root: Path, *, rounds: int = 3, has_runs: bool = True, timeout_s: float = 60.0) -> list[float]:
    """Wall-clock milliseconds of each timed command that succeeded, ``rounds`` times each."""
    env = {**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True", "NO_COLOR": "1"}
    commands = [c for c in COMMANDS if has_runs or c != ("status",)]
    samples: list[float] = []
    for _ in range(rounds):
        for args in commands:
            start = time.perf_counter()
            done = subprocess.run([*command_prefix(), *args], cwd=project_root, env=env, capture_output=True,
                                  timeout=timeout_s, check=False)
            if done.returncode == 0:  # a command that failed fast says nothing of how fast it answers
                samples.append((time.perf_counter() - start) * 1000)
    return samples


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (the p95 of 6 samples is the slowest)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]
