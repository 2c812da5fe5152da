"""The Bug Fixer: given a task's failing tests and their output, proposes a fix (at most 3 attempts).

It may not delete, skip or weaken tests to go green: the edit guard refuses an edit that removes
assertions from a test file, marks tests skipped, or deletes one (``aigentflow.checks.testguard``).
"""

from __future__ import annotations

import json

from actors.base import BaseAgent
from actors.developer import task_text
from aigentflow.roles.outputs import Fix
from aigentflow.run.protocol import AgentCall


class BugFixer(BaseAgent):
    role = "bug_fixer"
    output_model = Fix

    def task_prompt(self, call: AgentCall) -> str:
        failing = json.dumps(call.inputs.get("failing", []), indent=2)
        earlier = json.dumps(call.inputs.get("earlier_attempts", []), indent=2)
        return (task_text(call) + f"Fix attempt {call.inputs.get('attempt', 1)}. The failing tests:\n\n```json\n"
                f"{failing}\n```\n\nThe test command's output (its end):\n\n```\n{call.inputs.get('output', '')}\n```"
                f"\n\nEarlier attempts:\n\n```json\n{earlier}\n```\n\nFix the code so that the tests pass. Do not "
                "delete, skip or weaken any test.")
