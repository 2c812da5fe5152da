"""The Reviewer: the linters' findings plus the model's review of a task's diff.

The verdict is approve or request-changes, with comments anchored to file and line. Lint findings
are deterministic and always count: a diff with findings is never approved, whatever the model
says. Request-changes sends the task back to its developer (at most ``MAX_REVIEW_ROUNDS`` times).
"""

from __future__ import annotations

import json

from actors.base import BaseAgent
from aigentflow.roles.outputs import Review
from aigentflow.run.protocol import AgentCall


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
