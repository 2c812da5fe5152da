"""Run outputs as files under ``.aigentflow/runs/<run_id>/``, written atomically, and the summary."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

from aigentflow.store.records import ArtifactRecord, StepRecord, TransitionRecord


def write_artifact(run_dir: Path, run_id: str, step: str, name: str, content: str) -> ArtifactRecord:
    """Write (or rewrite, on a retried step) one output file atomically; the same name, one file."""
    if "/" in name or name.startswith("."):
        raise ValueError(f"artifact names are plain file names, not {name!r}")
    run_dir.mkdir(parents=True, exist_ok=True)
    data = content.encode()
    fd, tmp = tempfile.mkstemp(dir=run_dir, prefix=f".{name}.")
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    target = run_dir / name
    os.replace(tmp, target)
    return ArtifactRecord(run_id, step, name, str(target), hashlib.sha256(data).hexdigest(), len(data))


def render_summary(
    run: Any, transitions: list[TransitionRecord], steps: list[StepRecord], artifact_names: list[str], final_state: str
) -> str:
    """The run's summary: request, outcome, timeline, per-step usage, and the outputs written."""
    done = [s for s in steps if s.status == "completed"]
    tokens_in = sum(s.input_tokens for s in done)
    tokens_out = sum(s.output_tokens for s in done)
    cost = sum(s.cost_usd for s in done)
    rows = [f"| {t.at} | {t.from_state or ''} | {t.to_state} | {t.event} |" for t in transitions]
    if transitions and transitions[-1].to_state != final_state:
        rows.append(f"| (this commit) | {transitions[-1].to_state} | {final_state} | ADVANCE |")
    timeline = "\n".join(rows)
    step_rows = "\n".join(
        f"| {s.step} | {s.role} | {s.attempt} | {s.status} | {s.input_tokens} | {s.output_tokens} | ${s.cost_usd:.4f} |"
        for s in steps
    )
    outputs = "\n".join(f"- `{name}`" for name in sorted(artifact_names))
    from aigentflow.models.spec import LENIENT_NOTICE, run_is_lenient

    warning = f"> **{LENIENT_NOTICE}.**\n\n" if run_is_lenient(run.settings) else ""
    return (
        f"# Run {run.id}\n\n{warning}**Request:** {run.request}\n\n**Outcome:** {final_state}  \n"
        f"**Model:** {run.model}  \n**Tokens:** {tokens_in} in, {tokens_out} out  \n**Cost:** ${cost:.4f}\n\n"
        f"## Timeline\n\n| at | from | to | event |\n|---|---|---|---|\n{timeline}\n\n"
        f"## Steps\n\n| step | agent | attempt | status | tokens in | tokens out | cost |\n"
        f"|---|---|---|---|---|---|---|\n{step_rows}\n\n## Outputs\n\n{outputs}\n"
    )
