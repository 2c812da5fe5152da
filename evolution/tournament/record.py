"""A recording tool: writes the shipped suite's cassette (``suite/cassette.json``) from scripted answers.

    python -m evolution.tournament.record

No model is called. Each task folder has ``script.json``: the file the task changes, a ``good`` and a
``bad`` implementation (appended to that file). ``QUALITY`` says which tasks each version of the role
gets wrong, so the versions really differ: the built-in 1.0.0 misses 3 of 12, the terse 1.1.0 misses 7,
the checklist 1.2.0 none. For each version and task the agent class runs as in a tournament, on a
lenient replay of that scripted answer, and the prompt it really sent is recorded with the answer (so
the cassette answers exactly these prompts). Each recorded answer is graded once, to check the script.
Run it again after changing a prompt layer, a task or an output schema.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aigentflow.models.cassette import write_json_atomic
from aigentflow.models.spec import ModelSpec
from evolution.tournament.tasks import SUITE_DIR, BenchmarkTask, load_suite

CASSETTE = SUITE_DIR / "cassette.json"
CASSETTE_NAME = "tournament"
ROLE = "backend_developer"

QUALITY: dict[str, set[str]] = {
    "1.0.0": {"py-search", "py-clear-done", "js-rename"},
    "1.1.0": {"py-remove", "py-rename", "py-search", "py-clear-done", "py-titles", "js-remove", "js-rename"},
    "1.2.0": set(),
}
"""The tasks each version's scripted answer gets wrong (its ``bad`` implementation)."""


def scripted_answer(task: BenchmarkTask, version: str) -> dict[str, Any]:
    script = json.loads((SUITE_DIR / task.id / "script.json").read_text(encoding="utf-8"))
    quality = "bad" if task.id in QUALITY[version] else "good"
    original = (task.snapshot_dir / script["file"]).read_text(encoding="utf-8")
    content = original.rstrip("\n") + "\n" + script[quality]
    terse = version == "1.1.0"
    return {
        "summary": f"Add {script['method']}." if terse else
                   f"Add {script['method']} to {script['file']}, as the task and its acceptance criteria ask.",
        "edits": [{"path": script["file"], "content": content}],
        "commit_message": f"feat: {task.title.lower()}",
    }


def record(target: Path = CASSETTE) -> list[dict[str, Any]]:
    import tempfile

    from actors import load_class
    from aigentflow.project.paths import ProjectPaths
    from evolution.tournament.play import agent_call, grade
    from evolution.tournament.versions import playable

    with tempfile.TemporaryDirectory() as scratch:
        versions = playable(ProjectPaths(Path(scratch)))
    entries: list[dict[str, Any]] = []
    report = []
    for task in (t for t in load_suite().values() if t.role == ROLE and t.source == "shipped"):
        for version in QUALITY:
            spec = versions.spec(ROLE, version)
            answer = scripted_answer(task, version)
            script = {"match": "lenient", "entries": [{"role": ROLE, "step": "build", "attempt": 1,
                                                       "response": answer}]}
            model = ModelSpec(name=f"replay/{CASSETTE_NAME}", replay_lenient=True, cassette=script,
                              cassette_source="(recorder script)")
            result = load_class(spec.implementation)().run(
                agent_call(task, spec, versions.layers, model, "record"), None)
            if not result.ok:
                raise SystemExit(f"{task.id} {version}: {result.error}")
            recorded = [dict(c) for c in result.calls]
            for entry in recorded:
                entry["agent_version"] = version
                entry["task"] = task.id
            entries += recorded
            graded = grade(task, answer["edits"], {"allow_unconfined": True})
            report.append((task.id, version, graded["passed"], graded["total"]))
    write_json_atomic(target, {
        "version": 1, "model": "scripted (evolution.tournament.record)",
        "description": "The benchmark suite's answers for every version of backend_developer: scripted by "
                       "evolution/tournament/record.py (answers of differing quality by version), not a model's.",
        "entries": entries,
    })
    for row in report:
        print(*row)
    return entries


if __name__ == "__main__":
    record()
