"""The developers: one work-breakdown task as structured file edits (applied later through the edit guard).

The Backend Developer takes every task but front-end ones when the Frontend Developer is on
(``agents.frontendDev``); the orchestrator routes by the task's type. The model sees the task, the
architecture, the tests written for it (when the Tester wrote them first), and the files of the
task's worktree (small text files, up to a budget). Its edits are whole-file contents; they are
applied by the build task through the edit guard (``aigentflow.checks.edits``), never by the agent, and
may not weaken tests (``aigentflow.checks.testguard``).
"""

from __future__ import annotations

import json

from actors.base import BaseAgent
from aigentflow.roles.outputs import TaskChange
from aigentflow.run.protocol import AgentCall


def render_files(files: dict[str, str]) -> str:
    return "\n\n".join(f"--- {path}\n```\n{text}\n```" for path, text in sorted(files.items())) or "(no files)"


def task_text(call: AgentCall) -> str:
    """The task, its acceptance criteria, the architecture and the worktree's files, for any role."""
    task = call.inputs["task"]
    criteria = "\n".join(f"- {c}" for c in task.get("acceptance_criteria", []))
    withheld = call.inputs.get("withheld")
    return (
        f"Feature request:\n\n{call.request}\n\nThe task: {task['id']} ({task['type']}): {task['title']}\n\n"
        f"{task['description']}\n\nAcceptance criteria:\n{criteria}\n\n"
        f"The architecture:\n\n```json\n{json.dumps(call.inputs.get('architecture'), indent=2, sort_keys=True)}\n"
        f"```\n\nThe files of the task's worktree (paths relative to the repository root):\n\n"
        f"{render_files(call.inputs.get('files', {}))}\n\n"
        + (f"Withheld because they hold secrets (do not edit them): {', '.join(withheld)}\n\n" if withheld else "")
    )


class Developer(BaseAgent):
    role = "backend_developer"
    output_model = TaskChange

    def task_prompt(self, call: AgentCall) -> str:
        tests = call.inputs.get("tests") or []
        first = (f"The tester wrote these tests first; make them pass without weakening them: {', '.join(tests)}\n\n"
                 if tests else "")
        design = call.inputs.get("design")
        if design:
            first += (f"The UI Designer's spec for this task (implement it, every state and accessibility note):"
                      f"\n\n```json\n{json.dumps(design, indent=2)}\n```\n\n")
        review = call.inputs.get("review")
        if review is not None:
            first += (f"The reviewer asked for changes ({call.inputs.get('review_summary', '')}):\n\n```json\n"
                      f"{json.dumps(review, indent=2)}\n```\n\nAddress every comment.\n\n")
        return (task_text(call) + first + "Implement the task. Give every file you create or change in full; "
                "paths are relative to the repository root. The project's tests must pass afterwards.")


class BackendDeveloper(Developer):
    role = "backend_developer"


class FrontendDeveloper(Developer):
    role = "frontend_developer"
