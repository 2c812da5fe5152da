"""The build and merge steps: workflows the Orchestrator runs with the Git Agent, agents and Ray tasks.

Build: the work breakdown's tasks whose dependencies are merged start together, each in its own
worktree made from the feature branch's head. For each, the Developer agent's edits (an ObjectRef)
feed a Ray task with declared resources that applies them, runs the project's tests in the sandbox
and, on a node without the repository, commits in a scratch clone and returns a bundle. A task
whose tests pass is merged into the feature branch at once (conflicts predicted first), which is
what lets its dependants start. Overlapping edits of tasks that ran side by side are reported as
soon as the second one returns. A conflict goes to the Merge Conflict Resolver; its proposal is
applied in a scratch worktree and must pass the tests before it is committed. Anything a machine
cannot settle stops the run in AWAITING_APPROVAL with the evidence.

Testing and fixing: the whole suite on the feature branch; while it fails, the Bug Fixer's attempt
(at most 3 rounds of TESTING -> FIXING -> TESTING) on a branch of its own, merged if it passes.

Merge: the feature branch into the integration branch (``git.merge_style``), behind the project's
CI command as a gate (``build.ci_command``), with the same conflict handling.

A retried step (resume, approve) skips what git already holds: merged tasks are not rebuilt, and
worktrees are re-attached.
"""

from __future__ import annotations

from actors.workflow.build import BuildWorkflow
from actors.workflow.common import Workflow, implementer, steady, withhold_secrets
from actors.workflow.stages import (
           AnalyzeWorkflow,
           FixWorkflow,
           MergeWorkflow,
           ReviewWorkflow,
           TestingWorkflow,
)

__all__ = ["AnalyzeWorkflow", "BuildWorkflow", "FixWorkflow", "MergeWorkflow", "ReviewWorkflow", "TestingWorkflow",
           "Workflow",
           "implementer", "steady", "withhold_secrets"]
