"""What each step's agent is given: the project's context, the prompt layers, and the inputs of its step
(the outputs of the steps before it that it needs, without what those steps only recorded).

``StepInputs`` reads the run's completed steps from the store each time (a resumed run sees what was
committed), and keeps what does not change during a run (the project's facts, the layers) once.
"""

from __future__ import annotations

from typing import Any

from aigentflow.project.paths import ProjectPaths
from aigentflow.run.statemachine import base_step, round_of

RECORD_ONLY = ("skills", "tool_calls", "git")
"""Keys of a step's stored output that are its record (what it was given, what it cost), not its result:
later agents do not get them."""


def _for_agents(output: dict[str, Any] | None) -> dict[str, Any] | None:
    return {k: v for k, v in output.items() if k not in RECORD_ONLY} if output else output



class StepInputs:
    """The inputs of one run's steps, from its store (``store``) and project (``paths``)."""

    def __init__(self, paths: ProjectPaths, store: Any, run_id: str) -> None:
        self.paths, self.store, self.run_id = paths, store, run_id
        self._cache: dict[str, Any] = {}

    def project_context(self) -> str:
        """The facts `init` recorded, and the Project Analyzer's analysis once ANALYZING has it."""
        analysis = next((s.output.get("project") for s in self.store.steps(self.run_id)
                         if s.step == "analyze" and s.status == "completed" and s.output), None)
        key = f"context:{bool(analysis)}"
        if key not in self._cache:
            from aigentflow.project.facts import ProjectFacts, render_facts

            project = self.store.get_project() or {"facts": {"name": self.paths.root.name}}
            self._cache[key] = render_facts(ProjectFacts.model_validate(project["facts"])) + (
                analysis.get("context", "") if analysis else "")
        return self._cache[key]

    def layers(self) -> dict[str, str]:
        if "layers" not in self._cache:
            from aigentflow.prompts.compose import load_layers

            self._cache["layers"] = load_layers(self.paths.prompts_dir, self.paths.agents_dir)
        return self._cache["layers"]

    def for_step(self, step: str) -> dict[str, Any]:
        completed = [s for s in self.store.steps(self.run_id) if s.status == "completed"]
        outputs = {s.step: _for_agents(s.output) for s in completed}
        rounds = {kind: [s.output for s in sorted((s for s in completed if base_step(s.step) == kind),
                                                  key=lambda s: round_of(s.step))] for kind in ("test", "fix")}
        step = base_step(step)
        if step == "analyze":
            from aigentflow.project.facts import snapshot_repository

            project = self.store.get_project() or {"facts": {}}
            return {"facts": project["facts"],
                    "snapshot": snapshot_repository(self.paths.root).model_dump(mode="json"),
                    **self._build(outputs)}
        inputs: dict[str, Any] = {"research": outputs.get("analyze")}
        if step != "plan":
            inputs["plan"] = outputs.get("plan")
        if step == "design":
            inputs["architecture"] = outputs.get("architect")
        if step in ("build", "test", "fix", "review", "merge"):
            inputs.update(self._build(outputs))
        if step in ("test", "fix"):  # what the earlier rounds of TESTING and FIXING found and did
            inputs.update(test_rounds=rounds["test"], fix_rounds=rounds["fix"])
        return inputs

    def _build(self, outputs: dict[str, Any]) -> dict[str, Any]:
        config = self.store.get_run(self.run_id).config
        build = config.build
        if not build.test_command:
            build = build.with_detected_test_command((self.store.get_project() or {"facts": {}})["facts"])
        return {"architecture": outputs.get("architect"), "build": outputs.get("build"),
                "design": outputs.get("design"),
                "settings": {"git": config.git.model_dump(mode="json"), "build": build.model_dump(mode="json"),
                             "compliance": config.compliance.model_dump(mode="json")}}
