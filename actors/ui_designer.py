"""The UI Designer: for the front-end tasks of a work breakdown, a structured spec of screens,
components, states and accessibility notes that the Frontend Developer implements.

It runs in DESIGNING, once for the whole breakdown; with no front-end task it calls no model and
says so. Its spec reaches each front-end task's developer with the task (``inputs["design"]``).
"""

from __future__ import annotations

import json

from pydantic import BaseModel

from actors.base import BaseAgent
from aigentflow.roles.outputs import UIDesign
from aigentflow.run.protocol import AgentCall, AgentResult

FRONTEND = "frontend"


class UIDesigner(BaseAgent):
    role = "ui_designer"
    output_model = UIDesign

    def run(self, call: AgentCall, gate: object = None) -> AgentResult:
        tasks = [t for t in (call.inputs.get("plan") or {}).get("tasks", []) if t.get("type") == FRONTEND]
        if not tasks:  # nothing to design: no model call
            return AgentResult(role=self.role, output={"summary": "No front-end task in the breakdown.",
                                                       "screens": []})
        return super().run(call, gate)

    def task_prompt(self, call: AgentCall) -> str:
        tasks = [t for t in (call.inputs.get("plan") or {}).get("tasks", []) if t.get("type") == FRONTEND]
        return (
            f"Feature request:\n\n{call.request}\n\nThe front-end tasks:\n\n```json\n{json.dumps(tasks, indent=2)}\n"
            f"```\n\nThe architecture:\n\n```json\n{json.dumps(call.inputs.get('architecture'), indent=2)}\n```\n\n"
            "Design the user interface of each front-end task: its screens, their components and every state "
            "each component can be in, and accessibility notes."
        )

    def files(self, output: BaseModel, call: AgentCall) -> dict[str, str]:
        assert isinstance(output, UIDesign)
        lines = [f"# UI design\n\n{output.summary}\n"]
        for screen in output.screens:
            lines.append(f"## {screen.task}: {screen.name}\n\n{screen.layout}\n")
            lines += [f"- **{c.name}**: {c.purpose} (states: {', '.join(c.states)})" for c in screen.components]
            lines.append("\nAccessibility:\n" + "\n".join(f"- {note}" for note in screen.accessibility) + "\n")
        return {"ui_design.md": "\n".join(lines)}
