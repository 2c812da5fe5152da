"""The Project Manager: a work breakdown whose dependencies form a DAG."""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from actors.base import BaseAgent
from aigentflow.run.protocol import AgentCall


class WorkTask(BaseModel):
    id: str = Field(pattern=r"^T\d+$", description="T1, T2, ...")
    title: str = Field(min_length=1)
    description: str = Field(min_length=1)
    type: Literal["backend", "frontend", "test", "docs", "infra"]
    depends_on: list[str] = Field(default_factory=list, description="Ids of the tasks this one needs first.")
    acceptance_criteria: list[str] = Field(min_length=1, description="Checks a tester can run.")
    estimate_hours: float = Field(gt=0, le=200)


class WorkBreakdown(BaseModel):
    """Tasks with ids, dependencies, acceptance criteria and estimates; dependencies form a DAG."""

    tasks: list[WorkTask] = Field(min_length=1)

    @model_validator(mode="after")
    def _dependencies_form_a_dag(self) -> WorkBreakdown:
        ids = [t.id for t in self.tasks]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"task ids must be unique; repeated: {', '.join(duplicates)}")
        known = set(ids)
        for task in self.tasks:
            dangling = [d for d in task.depends_on if d not in known]
            if dangling:
                raise ValueError(f"task {task.id} depends on {', '.join(dangling)}, which is not in the breakdown")
            if task.id in task.depends_on:
                raise ValueError(f"task {task.id} depends on itself")
        order = topological_order(self)
        if order is None:
            raise ValueError("the dependencies contain a cycle; they must form a DAG")
        return self

    @property
    def total_hours(self) -> float:
        return sum(t.estimate_hours for t in self.tasks)


def topological_order(breakdown: WorkBreakdown) -> list[str] | None:
    """Task ids in an order that respects dependencies (stable by id), or None on a cycle."""
    remaining = {t.id: set(t.depends_on) for t in breakdown.tasks}
    order: list[str] = []
    while remaining:
        ready = sorted((i for i, deps in remaining.items() if not deps), key=lambda i: int(i[1:]))
        if not ready:
            return None
        for task_id in ready:
            order.append(task_id)
            del remaining[task_id]
        for deps in remaining.values():
            deps.difference_update(ready)
    return order


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
