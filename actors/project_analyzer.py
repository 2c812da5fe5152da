"""The Project Analyzer: what the repository is, measured, plus a model-written summary for every agent.

Deterministic: the facts `init` recorded (languages, frameworks, package manager, test command,
entry points, size), how coverage can be measured, and the baseline: the test suite and its coverage
on the integration branch, run in the sandbox. Then the model summarises the project (conventions,
risks) from those facts and its key files. The result goes into every later agent's project-context
layer. It runs at the start of ANALYZING (``actors.workflow.AnalyzeWorkflow``) when
``agents.projectAnalyzer`` is on.
"""

from __future__ import annotations

import json

from actors.base import BaseAgent
from aigentflow.roles.outputs import ProjectSummary
from aigentflow.run.protocol import AgentCall


class ProjectAnalyzer(BaseAgent):
    role = "project_analyzer"
    output_model = ProjectSummary

    def task_prompt(self, call: AgentCall) -> str:
        snapshot = call.inputs.get("snapshot") or {}
        key_files = "\n\n".join(f"## {path}\n\n```\n{text}\n```"
                                for path, text in sorted(snapshot.get("key_files", {}).items()))
        return (
            "The repository's measured facts and baseline:\n\n```json\n"
            f"{json.dumps(call.inputs.get('analysis'), indent=2, sort_keys=True)}\n```\n\nKey files:\n\n{key_files}\n\n"
            "Summarise the project for the other agents: what it is, how it is built and tested, the conventions "
            "to follow, and what is fragile."
        )


def render_analysis(analysis: dict, summary: dict) -> str:
    """The analysis as the markdown other agents get in their project-context layer."""
    baseline = analysis.get("baseline") or {}
    coverage = baseline.get("total_percent")
    lines = ["## Project analysis", "", summary.get("summary", ""), "",
             f"- Test baseline: {'passing' if baseline.get('tests_ok') else 'FAILING' if baseline else 'not run'}"
             + (f", coverage {coverage}%" if coverage is not None else ""),
             f"- Coverage is measured with: {analysis.get('coverage_method')}"]
    lines += [f"- Convention: {c}" for c in summary.get("conventions", [])]
    lines += [f"- Risk: {r}" for r in summary.get("risks", [])]
    return "\n".join(lines) + "\n"
