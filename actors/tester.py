"""The Tester: writes a task's tests first, from its acceptance criteria (TDD).

Its edits may touch test files only (``aigentflow.checks.testguard.is_test_path``). They are applied and the
project's test command runs before any implementation: the new tests must fail then (a new test that
already passes is flagged as a TDD violation on the task) and pass after the implementation.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from actors.base import BaseAgent
from actors.developer import task_text
from aigentflow.checks.edits import FileEdit
from aigentflow.run.protocol import AgentCall


class TestPlan(BaseModel):
    __test__ = False  # not a pytest test class

    summary: str = Field(min_length=1, description="What the tests check, criterion by criterion.")
    edits: list[FileEdit] = Field(min_length=1, description="Whole contents of the test files created or changed.")


class Tester(BaseAgent):
    role = "tester"
    output_model = TestPlan

    def task_prompt(self, call: AgentCall) -> str:
        return (task_text(call) + "Write the tests for this task before it is implemented: at least one test per "
                "acceptance criterion, in the project's test framework and layout. They must fail now (the "
                "feature does not exist yet) and pass once it is implemented. Write test files only.")
