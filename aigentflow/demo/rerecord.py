"""Refresh the shipped demo cassette's prompt hashes after a prompt layer or an output schema changed.

    python -m aigentflow.demo.rerecord

Runs the demo request on a fresh copy of the sample project with the current prompts (on a local
Ray instance, as the demo does) as a lenient replay (answers by agent and step, since the prompts
changed), recording what the agents send, and writes those prompts' hashes into
``aigentflow/cassettes/demo.json``. The recorded replies are kept as they are; review them if an
output schema changed.
"""

from __future__ import annotations

import json
import tempfile
from importlib import resources
from pathlib import Path


def rerecord(cassette: Path) -> dict[tuple[str, str, int], str]:
    """Write the current prompt hashes into ``cassette``; returns them by (role, step, attempt).

    The demo builds in worktrees with Ray tasks, so this runs it as `aigentflow demo` does: on a local
    Ray instance (127.0.0.1, its own temp dir), recording every model call."""
    from aigentflow.cli.project_cmd import initialise
    from aigentflow.cluster.connect import connect_ray
    from aigentflow.demo import DEMO_REQUEST, create_sample_project, demo_settings
    from aigentflow.project.paths import ProjectPaths
    from aigentflow.run.runner import create_run, drive, engine_options

    with tempfile.TemporaryDirectory() as scratch:
        repo = create_sample_project(Path(scratch) / "sample")
        initialise(repo)
        paths = ProjectPaths(repo)
        recording = Path(scratch) / "recording.json"
        # Lenient: the prompts changed, so no hash matches; the replies are replayed by agent and step.
        run, spec = create_run(paths, DEMO_REQUEST, {**demo_settings(), "model.name": f"replay/{cassette}",
                                                     "model.replay_lenient": "true"}, record=str(recording))
        connect_ray(None)
        outcome = drive(paths, run, engine_options(run, spec, str(recording)), resume=False)
        if outcome.state != "COMPLETED":
            raise SystemExit(f"the demo run ended {outcome.state}: {outcome.error}")
        recorded = json.loads(recording.read_text())["entries"]
    hashes = {(e["role"], e["step"], int(e["attempt"])): e["prompt_hash"] for e in recorded}
    data = json.loads(cassette.read_text())
    for entry in data["entries"]:
        entry["prompt_hash"] = hashes[(entry["role"], entry["step"], int(entry.get("attempt", 1)))]
    cassette.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    return hashes


if __name__ == "__main__":
    target = Path(str(resources.files("aigentflow") / "cassettes" / "demo.json"))
    for key, value in rerecord(target).items():
        print(*key, value)
