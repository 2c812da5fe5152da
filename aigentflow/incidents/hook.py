"""Detection at the end of every run (flag ``enterprise.incidentResponse``, ``incidents.detect_on_run_end``).

The engine calls ``run_finished`` on the run's hook worker (``run.finished`` / ``run.failed``); it starts
``aigentflow incidents detect --quiet`` detached and returns at once, so neither detection's reads nor an
unreachable route's retries hold the run, and its failure is never the run's."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ENTRY_POINT = "aigentflow.incidents.hook:run_finished"


def run_finished(project_root: str, event: Any = None) -> int | None:
    """Start the detection; its process id (None when turned off in ``[incidents]``)."""
    from aigentflow.incidents.config import load_settings

    if not load_settings(Path(project_root)).detect_on_run_end:
        return None
    process = subprocess.Popen(
        [sys.executable, "-m", "aigentflow", "incidents", "detect", "--quiet"], cwd=project_root,
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        env={**os.environ, "LITELLM_LOCAL_MODEL_COST_MAP": "True"},
    )
    return process.pid
