"""Refresh the shipped demo cassette's prompt hashes after a prompt layer or an output schema changed.

    python -m aigentflow.demo.rerecord

Runs the demo request on a fresh copy of the sample project with the current prompts (in-process,
no Ray), recording what the agents send, and writes those prompts' hashes into
``aigentflow/cassettes/demo.json``. The recorded replies are kept as they are; review them if an
output schema changed.
"""

from __future__ import annotations

import json
import tempfile
from importlib import resources
from pathlib import Path


def rerecord(cassette: Path) -> dict[tuple[str, str, int], str]:
    """Write the current prompt hashes into ``cassette``; returns them by (role, step, attempt)."""
    from actors import agent_class
    from aigentflow.cli.project_cmd import initialise
    from aigentflow.demo import DEMO_REQUEST, create_sample_project
    from aigentflow.engine import RunEngine
    from aigentflow.paths import ProjectPaths
    from aigentflow.runner import create_run, engine_options

    with tempfile.TemporaryDirectory() as scratch:
        repo = create_sample_project(Path(scratch) / "sample")
        initialise(repo)
        paths = ProjectPaths(repo)
        recording = Path(scratch) / "recording.json"
        run, spec = create_run(paths, DEMO_REQUEST, {"model.name": f"replay/{cassette}"}, record=str(recording))
        agents: dict = {}

        def invoke(role, call):  # type: ignore[no-untyped-def]
            agents.setdefault(role, agent_class(role)())
            return agents[role].run(call, None)

        final = RunEngine(paths, run.id, invoke, engine_options(run, spec)).drive()
        if final.state != "COMPLETED":
            raise SystemExit(f"the demo run ended {final.state}: {final.error}")
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
