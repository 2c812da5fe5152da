"""The Reviewer: the linters' findings plus the model's review of a task's diff.

The verdict is approve or request-changes, with comments anchored to file and line. Lint findings
are deterministic and always count: a diff with findings is never approved, whatever the model
says. Request-changes sends the task back to its developer (at most ``MAX_REVIEW_ROUNDS`` times).
"""

from __future__ import annotations

import json
from typing import Literal

from pydantic import BaseModel, Field

from actors.base import BaseAgent
from aigentflow.run.protocol import AgentCall


class ReviewComment(BaseModel):
    path: str = Field(min_length=1)
    line: int = Field(ge=0, description="1-based line in the new version of the file (0: the whole file).")
    body: str = Field(min_length=1)
    severity: Literal["blocker", "major", "minor", "nit"] = "minor"


class Review(BaseModel):
    verdict: Literal["approve", "request_changes"]
    summary: str = Field(min_length=1)
    comments: list[ReviewComment] = Field(default_factory=list)


class Reviewer(BaseAgent):
    role = "reviewer"
    output_model = Review

    def task_prompt(self, call: AgentCall) -> str:
        task = call.inputs["task"]
        criteria = "\n".join(f"- {c}" for c in task.get("acceptance_criteria", []))
        return (
            f"Feature request:\n\n{call.request}\n\nTask {task['id']}: {task['title']}\n\n{task['description']}\n\n"
            f"Acceptance criteria:\n{criteria}\n\nThe diff (against the feature branch):\n\n```diff\n"
            f"{call.inputs.get('diff', '')}\n```\n\nThe project's linters found:\n\n```json\n"
            f"{json.dumps(call.inputs.get('lint', []), indent=2)}\n```\n\nThe tests pass. Review the change: "
            "correctness against the criteria, clarity, tests, security. Approve, or request changes with "
            "comments anchored to file and line."
        )
