"""The results of the workflow steps (build, test, fix, review, merge) as schemas.

These steps are workflows of calls (``actors/workflow``), not one model call, so their results are
dicts the workflow assembles, stored as the step's ``output``. The models name the fields people and
programs read (what ``status`` renders) and allow the rest (``extra="allow"``): a task's test record,
for example, carries the sandbox's whole report. Agent outputs proper are in ``aigentflow.roles.outputs``.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from aigentflow.roles.outputs import ReviewComment


class Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class LintFinding(Open):
    path: str
    line: int
    code: str
    message: str


class Lint(Open):
    """The deterministic linter's run over the changed files."""

    tool: str
    ran: bool
    findings: list[LintFinding]
    detail: str = ""


class TaskReview(Open):
    """One review round of a task: lint plus the Reviewer's verdict (lint findings request changes)."""

    round: int
    verdict: Literal["approve", "request_changes"]
    model_verdict: Literal["approve", "request_changes"] | None
    summary: str
    comments: list[ReviewComment]
    lint: Lint


class FixAttempt(Open):
    attempt: int
    status: str
    detail: str


class BuildTask(Open):
    """One work-breakdown task as the build left it."""

    task_id: str
    status: str = Field(description="passed, failed, refused, error, blocked, coverage_below, changes_requested.")
    merged: bool = False
    commit: str | None = None
    detail: str = ""
    reviews: list[TaskReview] = Field(default_factory=list)
    fix_attempts: list[FixAttempt] = Field(default_factory=list)
    tests: dict[str, Any] | None = None
    tdd: dict[str, Any] | None = None
    coverage: dict[str, Any] | None = None
    remote: bool = False


class Overlap(Open):
    path: str
    tasks: list[str]
    conflict_predicted: bool


class BuildOutput(Open):
    """The ``build`` step: every task in its worktree, merged into the feature branch."""

    feature_branch: str
    integration_branch: str
    tasks: dict[str, BuildTask]
    conflicts: list[dict[str, Any]]
    overlaps: list[Overlap]
    test_command: str
    coverage_baseline: dict[str, Any] | None


class TestRound(Open):
    """A ``test`` step (``test.2``: its second round): the whole suite on the feature branch."""

    __test__ = False  # not a pytest test class

    feature_branch: str
    command: str
    round: int
    ok: bool
    summary: str
    tests: dict[str, Any] | None = None
    coverage: dict[str, Any] | None = None


class SuiteFix(Open):
    """A ``fix`` step: the Bug Fixer's attempt at the failing suite, merged into the feature if it passes."""

    attempt: int
    status: str
    detail: str
    merged: bool = False


class FeatureReview(Open):
    """The ``review`` step: lint over the whole feature, and every task's last review verdict."""

    feature_branch: str
    changed: list[str]
    lint: Lint
    task_verdicts: dict[str, str]
    verdict: Literal["approve", "request_changes"]


class MergeOutput(Open):
    """The ``merge`` step: the feature branch merged into the integration branch."""

    feature_branch: str
    integration_branch: str
    merge: dict[str, Any]
