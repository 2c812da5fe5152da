"""The agent protocol: what the orchestrator sends an agent and what it gets back.

An agent is a function of (task, context) -> (validated structured output, spans). It calls its model
through litellm and never opens a store: everything it needs travels in ``AgentCall`` (prompt layers,
project context, earlier outputs, the model spec with its cassette), and everything it produces comes
back in ``AgentResult`` for the run's owner to persist.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from aigentflow.models.spec import ModelSpec


@dataclass(frozen=True)
class AgentCall:
    """One unit of work for an agent."""

    run_id: str
    step: str
    attempt: int
    request: str
    project_context: str
    layers: dict[str, str]
    model: ModelSpec
    inputs: dict[str, Any] = field(default_factory=dict)
    parent_span_id: str | None = None
    budget: int | None = None
    tenant_id: str = "default"
    timeout_s: float | None = None
    """How long the step may take (``run.step_timeout_s``); the Orchestrator stops waiting then."""
    skills: str = ""
    """The prompt layer of the skills picked for this call (``aigentflow.skills``), or ""."""
    skill_picks: tuple[dict[str, Any], ...] = ()
    """What was picked (name, source, score, matched terms): recorded on the step."""
    skills_withheld: tuple[str, ...] = ()
    """Skills picked as relevant to this call that the role version may not use (its spec's ``skills``):
    on the agent span (``aigentflow.skills.withheld``), where the pattern miner finds missing skills."""
    tools: tuple[dict[str, Any], ...] = ()
    """The MCP tools this role may call (id ``server/tool``, description, input schema), or none."""
    tool_router: Any = None
    """The run's Tool Router actor, which makes the calls (allowlist, spans); None without tools."""
    tool_grants: tuple[str, ...] = ()
    """MCP tools the picked skills' ``allowed-tools`` add to the role's allowlist for this call."""
    tool_limits: dict[str, Any] = field(default_factory=dict)
    """``ToolSettings`` limits: max_rounds, max_calls_per_round, max_result_chars."""
    notices: tuple[str, ...] = ()
    """What the agent should report as warnings (an MCP server whose tools could not be listed)."""
    agent_name: str = ""
    """The agent's registered name (``gen_ai.agent.name`` on its spans); "" means its role."""
    agent_version: str = ""
    """The agent's version (``gen_ai.agent.version`` on its spans), or "" when none is known."""
    agent_origin: str = ""
    """Where that version comes from (``aigentflow.agent.origin``: builtin, project or generated), or ""."""
    prompt_layers: tuple[str, ...] = ()
    """The role's prompt layers (``AgentSpec.role_layers``); empty: ``roles/<role>.md``."""
    quota: Any = None
    """The tenant's ``Allowance`` (``aigentflow.tenants.quotas``) when the step started: what its model calls
    may still spend (counted down by ``ModelClient``), and the Model Gateway's rate limit; None: no quotas."""
    shadow: bool = False
    """A shadow call (``aigentflow.run.shadow``): the candidate version ``agent_version`` of the role plays the
    step beside the incumbent; its output is graded and discarded, never written, merged or committed."""


@dataclass
class AgentResult:
    """What an agent returns: its validated output, the files it wants written, spans and calls."""

    role: str
    output: dict[str, Any]
    files: dict[str, str] = field(default_factory=dict)
    spans: list[dict[str, Any]] = field(default_factory=list)
    calls: list[dict[str, Any]] = field(default_factory=list)
    """The answered model calls, as cassette entries (for recording and the audit log)."""
    model_calls: int = 0
    """Every model call made, transient failures and litellm Router's retries and fallbacks included
    (what the budget counts)."""
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    by_model: dict[str, dict[str, Any]] = field(default_factory=dict)
    """The usage per model that answered: ``{model: {provider, calls, input_tokens, output_tokens, cost_usd}}``."""
    prompt_hashes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    error_kind: str | None = None
    """``paused`` when the gate stopped the agent, else the failure's class name."""
    skills: list[dict[str, Any]] = field(default_factory=list)
    """The skills its prompt carried (from ``AgentCall.skill_picks``)."""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    """The MCP tool calls it made: tool, ok, refused, error, duration, result size (no arguments)."""

    @property
    def ok(self) -> bool:
        return self.error is None


def usage_by_model(calls: list[Any]) -> dict[str, dict[str, Any]]:
    r"""``AgentResult.by_model`` of model calls (``CallRecord``\ s): each try counted under the model that
    answered it (a transient failure under the model asked for)."""
    usage: dict[str, dict[str, Any]] = {}
    for call in calls:
        row = usage.setdefault(call.model or "?", {"provider": call.provider, "calls": 0, "input_tokens": 0,
                                                   "output_tokens": 0, "cost_usd": 0.0})
        row["provider"] = row["provider"] or call.provider
        row["calls"] += 1
        row["input_tokens"] += call.input_tokens
        row["output_tokens"] += call.output_tokens
        row["cost_usd"] += call.cost_usd
    return usage


def merge_usage(into: dict[str, dict[str, Any]], part: dict[str, dict[str, Any]]) -> None:
    """Add ``part``'s per-model usage to ``into``'s."""
    for model, row in part.items():
        mine = into.setdefault(model, {"provider": row.get("provider", ""), "calls": 0, "input_tokens": 0,
                                       "output_tokens": 0, "cost_usd": 0.0})
        for key in ("calls", "input_tokens", "output_tokens", "cost_usd"):
            mine[key] += row.get(key, 0)


class Agent(Protocol):
    role: str

    def run(self, call: AgentCall, gate: Any = None) -> AgentResult: ...
