"""The Tester: writes a task's tests first, from its acceptance criteria (TDD).

Its edits may touch test files only (``aigentflow.checks.testguard.is_test_path``). They are applied and the
project's test command runs before any implementation: the new tests must fail then (a new test that
already passes is flagged as a TDD violation on the task) and pass after the implementation.
"""

from __future__ import annotations

from actors.base import BaseAgent
from actors.developer import task_text
from aigentflow.roles.outputs import TestPlan
from aigentflow.run.protocol import AgentCall


class Tester(BaseAgent):
    role = "tester"
    output_model = TestPlan

    def task_prompt(self, call: AgentCall) -> str:
        return (task_text(call) + "Write the tests for this task before it is implemented: at least one test per "
                "acceptance criterion, in the project's test framework and layout. They must fail now (the "
                "feature does not exist yet) and pass once it is implemented. Write test files only.")
