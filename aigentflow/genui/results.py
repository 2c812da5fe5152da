"""Command results as schemas: what `aigentflow status`, `runs` and `audit` print with ``--json``.

The commands build plain dicts (``status`` must start without pydantic); these models describe those
dicts, field by field, and are what ``aigentflow schema`` publishes. ``extra="forbid"`` throughout:
a key a command adds without adding it here fails the test that validates every command's real
output against its schema (tests/test_genui_schemas.py), so the published schema cannot drift.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

RunState = Literal["CREATED", "ANALYZING", "PLANNING", "ARCHITECTING", "DESIGNING", "BUILDING", "TESTING",
                   "FIXING", "REVIEWING", "MERGING", "AWAITING_APPROVAL", "PAUSED", "COMPLETED", "FAILED",
                   "CANCELLED"]
"""Every state of the run state machine (``aigentflow.run.statemachine.State``)."""


class Closed(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Replay(Closed):
    """How a replay run's answers were obtained; null for a real model."""

    lenient: bool = Field(description="Answers were not matched by prompt (the cassette says so).")
    cassette: str = Field(description="The cassette's name (the model's part after replay/).")


class RunFields(Closed):
    """A run's row, without its settings."""

    id: str
    tenant_id: str
    project_id: str
    request: str = Field(description="The feature request, secrets redacted.")
    model: str
    state: RunState
    return_to: RunState | None = Field(description="Where a PAUSED or AWAITING_APPROVAL run goes on resume.")
    version: int = Field(description="Bumped by every change of the row (compare-and-set).")
    created_at: str
    updated_at: str
    finished_at: str | None
    error: str | None
    flags: dict[str, bool | int | float | str] = Field(description="The run's feature flags, as resolved.")
    owner_pid: int | None
    owner_host: str | None
    heartbeat_at: str | None
    pause_requested: bool
    model_calls: int


class Transition(Closed):
    seq: int
    run_id: str
    from_state: RunState | None
    to_state: RunState
    event: str
    reason: str | None
    at: str


class Step(Closed):
    """One attempt of one step; ``output`` is the step's result (see the ``step.*`` and ``agent.*`` schemas)."""

    run_id: str
    step: str = Field(description="analyze, plan, build, test.2 (a round), ...")
    attempt: int
    role: str
    state: RunState
    status: Literal["started", "completed", "failed"]
    output: dict[str, Any] | None
    error: str | None
    started_at: str
    finished_at: str | None
    input_tokens: int
    output_tokens: int
    cost_usd: float
    model_calls: int
    prompt_hashes: list[str]


class Artifact(Closed):
    run_id: str
    step: str
    name: str
    path: str
    sha256: str
    bytes: int
    created_at: str


class ModelCost(Closed):
    model: str
    provider: str
    model_calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: float


class Costs(Closed):
    by_model: list[ModelCost]
    all_attempts_usd: float = Field(description="Every attempt's cost, failed ones included.")


class Totals(Closed):
    """The completed steps' tokens and cost, and the run's model calls."""

    input_tokens: int
    output_tokens: int
    cost_usd: float
    model_calls: int


class Metrics(Closed):
    """The rollout plan's v1.0 figures for the run (null: nothing to measure)."""

    agent_success_rate: float | None
    build_pass_rate: float | None
    review_approval_rate: float | None
    coverage_percent: float | None
    coverage_delta: float | None


class Sandbox(Closed):
    filesystem: list[str] = Field(description="How the agents' commands were confined: bwrap, unconfined.")


class GeneratedAgent(Closed):
    version: str
    approval: str = Field(description="pending, approved, rejected, or empty.")


class Emergency(Closed):
    """The operator's four emergency switches (`aigentflow admin emergency`), as `status` shows them."""

    pause_all: bool
    disable_generated_agents: bool
    disable_evolution: bool
    evolution_disabled_reason: str | None
    single_tenant_mode: bool


class RunReport(Closed):
    """`aigentflow status [RUN] --json`: one run's state, history, steps, outputs and costs."""

    run: RunFields
    replay: Replay | None
    agents: dict[str, str | None] = Field(description="The version of each role the run uses.")
    metrics: Metrics
    sandbox: Sandbox
    transitions: list[Transition]
    steps: list[Step]
    artifacts: list[Artifact]
    costs: Costs
    totals: Totals
    emergency_pause_all: bool
    emergency: Emergency
    generated_agents: dict[str, GeneratedAgent]


class RunRow(Closed):
    """One run as `aigentflow runs --json` lists it."""

    id: str
    state: RunState
    model: str
    created_at: str
    request: str
    cost_usd: float
    tokens: int
    error: str | None
    replay: Replay | None


class AuditEntry(Closed):
    """One entry of the audit log (`aigentflow audit --json` prints a list of them)."""

    seq: int
    tenant_id: str
    run_id: str | None
    event: str = Field(description="run.created, run.state_changed, agent.finished, task.progress, flag.changed, ...")
    at: str
    data: dict[str, Any]


class SchemaRow(Closed):
    """One published schema, as `aigentflow schema list --json` lists it."""

    name: str
    kind: Literal["command", "agent", "step", "event"]
    title: str
    description: str
