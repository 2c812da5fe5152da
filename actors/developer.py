"""The Developer: one work-breakdown task as structured file edits (applied later through the edit guard).

The model sees the task, the architecture, and the files of the task's worktree (small text files,
up to a budget). Its edits are whole-file contents; they are applied in the worktree by the build
task, never by the agent, so the edit guard (``aigentflow.edits``) is the only way they reach disk.
"""

from __future__ import annotations

import json

from pydantic import BaseModel, Field

from actors.base import BaseAgent
from aigentflow.agents import AgentCall
from aigentflow.edits import FileEdit


class TaskChange(BaseModel):
    summary: str = Field(min_length=1, description="What the change does, in a sentence or two.")
    edits: list[FileEdit] = Field(min_length=1, description="Whole-file contents of each file created or changed.")
    commit_message: str = Field(min_length=1, max_length=200, description="First line of the commit message.")


def render_files(files: dict[str, str]) -> str:
    return "\n\n".join(f"--- {path}\n```\n{text}\n```" for path, text in sorted(files.items())) or "(no files)"


class Developer(BaseAgent):
    role = "developer"
    output_model = TaskChange

    def task_prompt(self, call: AgentCall) -> str:
        task = call.inputs["task"]
        criteria = "\n".join(f"- {c}" for c in task.get("acceptance_criteria", []))
        return (
            f"Feature request:\n\n{call.request}\n\nYour task: {task['id']} ({task['type']}): {task['title']}\n\n"
            f"{task['description']}\n\nAcceptance criteria:\n{criteria}\n\n"
            f"The architecture:\n\n```json\n{json.dumps(call.inputs.get('architecture'), indent=2, sort_keys=True)}\n"
            f"```\n\nThe files of your worktree (paths relative to the repository root):\n\n"
            f"{render_files(call.inputs.get('files', {}))}\n\n"
            + (f"Withheld because they hold secrets (do not edit them): {', '.join(call.inputs['withheld'])}\n\n"
               if call.inputs.get("withheld") else "")
            + "Implement the task. Give every file you create or change in full; paths are relative to the "
            "repository root. The project's tests must pass afterwards."
        )
