"""The Architect: recommendations, each decision with its rationale and the alternatives considered."""

from __future__ import annotations

import json

from pydantic import BaseModel

from actors.base import BaseAgent
from aigentflow.roles.outputs import ArchitectureRecommendations
from aigentflow.run.protocol import AgentCall


class Architect(BaseAgent):
    role = "architect"
    output_model = ArchitectureRecommendations

    def task_prompt(self, call: AgentCall) -> str:
        return (
            f"Feature request:\n\n{call.request}\n\nThe analyst's research:\n\n"
            f"```json\n{json.dumps(call.inputs.get('research'), indent=2, sort_keys=True)}\n```\n\n"
            f"The work breakdown:\n\n```json\n{json.dumps(call.inputs.get('plan'), indent=2, sort_keys=True)}\n```\n\n"
            "Recommend how to build it."
        )

    def files(self, output: BaseModel, call: AgentCall) -> dict[str, str]:
        assert isinstance(output, ArchitectureRecommendations)
        parts = [f"# Architecture recommendations\n\n**Request:** {call.request}\n\n{output.overview}\n"]
        for number, decision in enumerate(output.decisions, 1):
            alternatives = "\n".join(f"- **{a.option}**: not chosen because {a.why_not}" for a in decision.alternatives)
            shapes = f"\n\nShapes tasks: {', '.join(decision.tasks)}" if decision.tasks else ""
            parts.append(
                f"## {number}. {decision.title}\n\n**Decision:** {decision.decision}\n\n"
                f"**Rationale:** {decision.rationale}\n\n**Alternatives considered:**\n\n{alternatives}{shapes}\n"
            )
        components = "\n".join(f"- {c}" for c in output.affected_components) or "- (none)"
        parts.append("## Affected components\n\n" + components + "\n")
        parts.append("## Risks\n\n" + ("\n".join(f"- {r}" for r in output.risks) or "- (none)") + "\n")
        return {"architecture.md": "\n".join(parts)}
