"""The Project Manager: a work breakdown whose dependencies form a DAG."""

from __future__ import annotations

import json

from pydantic import BaseModel

from actors.base import BaseAgent
from aigentflow.roles.outputs import WorkBreakdown, topological_order
from aigentflow.run.protocol import AgentCall


class ProjectManager(BaseAgent):
    role = "project_manager"
    output_model = WorkBreakdown

    def task_prompt(self, call: AgentCall) -> str:
        research = call.inputs.get("research")
        return (
            f"Feature request:\n\n{call.request}\n\nThe analyst's research:\n\n"
            f"```json\n{json.dumps(research, indent=2, sort_keys=True)}\n```\n\n"
            "Break the work down into tasks."
        )

    def files(self, output: BaseModel, call: AgentCall) -> dict[str, str]:
        assert isinstance(output, WorkBreakdown)
        by_id = {t.id: t for t in output.tasks}
        lines = [f"# Work breakdown\n\n**Request:** {call.request}\n",
                 f"{len(output.tasks)} tasks, {output.total_hours:g} hours estimated. In dependency order:\n"]
        for task_id in topological_order(output) or []:
            task = by_id[task_id]
            deps = ", ".join(task.depends_on) or "none"
            criteria = "\n".join(f"  - [ ] {c}" for c in task.acceptance_criteria)
            lines.append(
                f"## {task.id}: {task.title}\n\n- Type: {task.type}\n- Depends on: {deps}\n"
                f"- Estimate: {task.estimate_hours:g} h\n\n{task.description}\n\nAcceptance criteria:\n{criteria}\n"
            )
        return {
            "work_breakdown.json": json.dumps(output.model_dump(mode="json"), indent=2, sort_keys=True) + "\n",
            "work_breakdown.md": "\n".join(lines),
        }
