"""The built-in roles, as data: one ``AgentSpec`` each, registered through the ``aigentflow.roles``
entry point (``pyproject.toml``). Importing this module imports no agent class, Ray or litellm: classes
are named as ``module:Class`` and loaded only where an actor is made (``actors/factory.py``)."""

from __future__ import annotations

from aigentflow.roles.registry import BUILTIN, RoleRegistry
from aigentflow.roles.spec import AgentSpec

VERSION = "1.0.0"
"""The version of every built-in role (a role's new versions come as spec files or from the evolution loop)."""

BUILTIN_SPECS: tuple[AgentSpec, ...] = (
    AgentSpec(name="analyst", version=VERSION, steps=("analyze",), flag="agents.analyst",
              implementation="actors.analyst:Analyst",
              description="Turns the feature request into requirements and research."),
    AgentSpec(name="project_analyzer", version=VERSION, helps=("analyze",), flag="agents.projectAnalyzer",
              implementation="actors.project_analyzer:ProjectAnalyzer", workflow="actors.workflow:AnalyzeWorkflow",
              description="Reads the repository (layout, tests, conventions) before the analyst."),
    AgentSpec(name="project_manager", version=VERSION, steps=("plan",), flag="agents.projectManager",
              implementation="actors.project_manager:ProjectManager",
              description="Splits the work into tasks with dependencies."),
    AgentSpec(name="architect", version=VERSION, steps=("architect",), flag="agents.architect",
              implementation="actors.architect:Architect", description="Designs the technical solution."),
    AgentSpec(name="ui_designer", version=VERSION, steps=("design",), flag="agents.uiDesigner",
              implementation="actors.ui_designer:UIDesigner", description="Designs the user interface."),
    AgentSpec(name="backend_developer", version=VERSION, steps=("build",), flag="agents.backendDev",
              implementation="actors.developer:BackendDeveloper", workflow="actors.workflow:BuildWorkflow",
              description="Writes a task's code in its worktree until its tests pass."),
    AgentSpec(name="frontend_developer", version=VERSION, helps=("build",), flag="agents.frontendDev",
              implementation="actors.developer:FrontendDeveloper",
              description="Writes a user-interface task's code in its worktree."),
    AgentSpec(name="tester", version=VERSION, steps=("test",), helps=("build",), flag="agents.tester",
              implementation="actors.tester:Tester", workflow="actors.workflow:TestingWorkflow",
              description="Writes a task's tests first (they must fail), then runs the whole suite."),
    AgentSpec(name="bug_fixer", version=VERSION, steps=("fix",), helps=("build",), flag="agents.bugFixer",
              implementation="actors.bug_fixer:BugFixer", workflow="actors.workflow:FixWorkflow",
              description="Repairs what the tests found, a round at a time."),
    AgentSpec(name="reviewer", version=VERSION, steps=("review",), helps=("build",), flag="agents.reviewer",
              implementation="actors.reviewer:Reviewer", workflow="actors.workflow:ReviewWorkflow",
              description="Reviews each task's change (lint findings block) and the whole feature."),
    AgentSpec(name="merge_resolver", version=VERSION, flag="agents.mergeResolver",
              implementation="actors.merge_resolver:MergeResolver",
              description="Resolves merge conflicts between tasks, or asks a human."),
    AgentSpec(name="git_agent", version=VERSION, steps=("merge",), helps=("build",), flag="agents.gitAgent",
              implementation="actors.git_agent:GitAgent", workflow="actors.workflow:MergeWorkflow",
              deterministic=True, description="Every change to the repository: worktrees, commits, merges."),
)


def register(registry: RoleRegistry) -> None:
    """The ``aigentflow.roles`` entry point: the built-in roles."""
    for spec in BUILTIN_SPECS:
        registry.register(spec, source=BUILTIN, builtin=True)
