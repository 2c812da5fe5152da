"""What each role returns: the structured outputs its model is asked for (their JSON Schema is in its
prompt) and the step results built from them.

They live here, not beside each agent in ``actors/``, because they are the contract between the agents
that produce them and everything that reads a run's results without Ray: ``aigentflow status``'s
renderer, the published schemas (``aigentflow schema``, ``aigentflow.genui.registry``), the build
workflow. A model's class name is its schema's title, so a prompt (and the cassettes recorded for it)
does not change with the module the model is defined in.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, model_validator

from aigentflow.checks.edits import FileEdit

# -- analyst -----------------------------------------------------------------------------------

class AnalystNotes(BaseModel):
    """What the model adds to the deterministic research."""

    summary: str = Field(min_length=1, description="What the request asks for, in the project's terms.")
    relevant_files: list[str] = Field(default_factory=list, description="Repository paths the request touches.")
    constraints: list[str] = Field(default_factory=list, description="What the change must respect.")
    risks: list[str] = Field(default_factory=list, description="What could go wrong.")
    open_questions: list[str] = Field(default_factory=list, description="What a human should decide.")


class Research(BaseModel):
    """The Analyst's output: facts found in the repository and the model's notes on the request."""

    request: str
    languages: dict[str, int]
    primary_language: str | None
    frameworks: list[str]
    package_manager: str | None
    test_command: str | None
    entry_points: list[str]
    file_count: int
    notes: AnalystNotes
    unknown_files: list[str] = Field(
        default_factory=list, description="Files the model named that the repository does not have."
    )


# -- architect ---------------------------------------------------------------------------------

class Alternative(BaseModel):
    option: str = Field(min_length=1)
    why_not: str = Field(min_length=1)


class Decision(BaseModel):
    title: str = Field(min_length=1)
    decision: str = Field(min_length=1)
    rationale: str = Field(min_length=1)
    alternatives: list[Alternative] = Field(min_length=1)
    tasks: list[str] = Field(default_factory=list, description="Work breakdown task ids this decision shapes.")


class ArchitectureRecommendations(BaseModel):
    overview: str = Field(min_length=1)
    decisions: list[Decision] = Field(min_length=1)
    affected_components: list[str] = Field(default_factory=list)
    risks: list[str] = Field(default_factory=list)


# -- project_manager ---------------------------------------------------------------------------

class WorkTask(BaseModel):
    id: str = Field(pattern=r"^T\d+$", description="T1, T2, ...")
    title: str = Field(min_length=1)
    description: str = Field(min_length=1)
    type: Literal["backend", "frontend", "test", "docs", "infra"]
    depends_on: list[str] = Field(default_factory=list, description="Ids of the tasks this one needs first.")
    acceptance_criteria: list[str] = Field(min_length=1, description="Checks a tester can run.")
    estimate_hours: float = Field(gt=0, le=200)


class WorkBreakdown(BaseModel):
    """Tasks with ids, dependencies, acceptance criteria and estimates; dependencies form a DAG."""

    tasks: list[WorkTask] = Field(min_length=1)

    @model_validator(mode="after")
    def _dependencies_form_a_dag(self) -> WorkBreakdown:
        ids = [t.id for t in self.tasks]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"task ids must be unique; repeated: {', '.join(duplicates)}")
        known = set(ids)
        for task in self.tasks:
            dangling = [d for d in task.depends_on if d not in known]
            if dangling:
                raise ValueError(f"task {task.id} depends on {', '.join(dangling)}, which is not in the breakdown")
            if task.id in task.depends_on:
                raise ValueError(f"task {task.id} depends on itself")
        order = topological_order(self)
        if order is None:
            raise ValueError("the dependencies contain a cycle; they must form a DAG")
        return self

    @property
    def total_hours(self) -> float:
        return sum(t.estimate_hours for t in self.tasks)


def topological_order(breakdown: WorkBreakdown) -> list[str] | None:
    """Task ids in an order that respects dependencies (stable by id), or None on a cycle."""
    remaining = {t.id: set(t.depends_on) for t in breakdown.tasks}
    order: list[str] = []
    while remaining:
        ready = sorted((i for i, deps in remaining.items() if not deps), key=lambda i: int(i[1:]))
        if not ready:
            return None
        for task_id in ready:
            order.append(task_id)
            del remaining[task_id]
        for deps in remaining.values():
            deps.difference_update(ready)
    return order


# -- reviewer ----------------------------------------------------------------------------------

class ReviewComment(BaseModel):
    path: str = Field(min_length=1)
    line: int = Field(ge=0, description="1-based line in the new version of the file (0: the whole file).")
    body: str = Field(min_length=1)
    severity: Literal["blocker", "major", "minor", "nit"] = "minor"


class Review(BaseModel):
    verdict: Literal["approve", "request_changes"]
    summary: str = Field(min_length=1)
    comments: list[ReviewComment] = Field(default_factory=list)


# -- tester ------------------------------------------------------------------------------------

class TestPlan(BaseModel):
    __test__ = False  # not a pytest test class

    summary: str = Field(min_length=1, description="What the tests check, criterion by criterion.")
    edits: list[FileEdit] = Field(min_length=1, description="Whole contents of the test files created or changed.")


# -- bug_fixer ---------------------------------------------------------------------------------

class Fix(BaseModel):
    diagnosis: str = Field(min_length=1, description="Why the tests fail.")
    summary: str = Field(min_length=1, description="What the fix changes.")
    edits: list[FileEdit] = Field(min_length=1, description="Whole contents of each file changed.")
    commit_message: str = Field(min_length=1, max_length=200, description="First line (conventional: fix: ...).")


# -- developer ---------------------------------------------------------------------------------

class TaskChange(BaseModel):
    summary: str = Field(min_length=1, description="What the change does, in a sentence or two.")
    edits: list[FileEdit] = Field(min_length=1, description="Whole-file contents of each file created or changed.")
    commit_message: str = Field(min_length=1, max_length=200,
                                description="First line of the commit message (conventional commits: feat: ...).")


# -- merge_resolver ----------------------------------------------------------------------------

class Resolution(BaseModel):
    resolved: bool = Field(description="Whether every conflict is resolved by these edits.")
    explanation: str = Field(min_length=1, description="How each conflict was resolved and why.")
    edits: list[FileEdit] = Field(default_factory=list, description="Whole resolved contents of conflicted files.")


# -- project_analyzer --------------------------------------------------------------------------

class ProjectSummary(BaseModel):
    summary: str = Field(min_length=1, description="What the project is and how it is built, for other agents.")
    conventions: list[str] = Field(default_factory=list, description="Style, layout and testing habits to follow.")
    risks: list[str] = Field(default_factory=list, description="What is fragile or easy to break.")


# -- ui_designer -------------------------------------------------------------------------------

class ComponentSpec(BaseModel):
    name: str = Field(min_length=1)
    purpose: str = Field(min_length=1)
    states: list[str] = Field(min_length=1, description="Empty, loading, error, filled, disabled, ...")


class ScreenSpec(BaseModel):
    task: str = Field(pattern=r"^T\d+$", description="The front-end task this screen belongs to.")
    name: str = Field(min_length=1)
    layout: str = Field(min_length=1, description="What is where, in words.")
    components: list[ComponentSpec] = Field(min_length=1)
    accessibility: list[str] = Field(min_length=1, description="Labels, focus order, contrast, keyboard use.")


class UIDesign(BaseModel):
    summary: str = Field(min_length=1)
    screens: list[ScreenSpec] = Field(default_factory=list)
