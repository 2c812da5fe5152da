"""The agent roles in-process (no Ray): the work breakdown's DAG rules, and each role run end to end
through the shipped prompt layers and the replay model reached through litellm."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from actors.analyst import Analyst
from actors.architect import Architect
from actors.base import BaseAgent
from actors.project_manager import ProjectManager
from aigentflow.exceptions import RunPaused
from aigentflow.models.spec import ModelSpec
from aigentflow.project.facts import detect_facts, render_facts, snapshot_repository
from aigentflow.prompts.compose import load_layers
from aigentflow.roles.outputs import WorkBreakdown, topological_order
from aigentflow.run.protocol import AgentCall, AgentResult
from tests.conftest import make_sample_repo

REQUEST = "Add due dates to tasks and a command that lists overdue tasks"

NOTES = {
    "summary": "Tasks gain an optional due date; `tasks overdue` lists open tasks past it.",
    "relevant_files": ["src/tasks_demo/store.py", "src/tasks_demo/cli.py"],
    "constraints": ["Old tasks.json files without `due` must keep loading."],
    "risks": ["Tests that compare against today depend on the clock."],
    "open_questions": ["Is a task due today overdue?"],
}


def task(task_id: str, *depends_on: str, type: str = "backend", title: str | None = None) -> dict[str, Any]:
    return {
        "id": task_id, "title": title or f"Task {task_id}", "description": f"Do {task_id}.", "type": type,
        "depends_on": list(depends_on), "acceptance_criteria": [f"{task_id} is checked"], "estimate_hours": 2,
    }


PLAN = {"tasks": [
    task("T1", title="Store due dates"),
    task("T2", "T1", title="Add the overdue command"),
    task("T3", "T1", "T2", type="test", title="Test overdue listing"),
]}

ARCHITECTURE = {
    "overview": "Keep the JSON store; add an optional `due` field parsed with datetime.date.",
    "decisions": [{
        "title": "Where due dates live",
        "decision": "An optional `due` string on each task record.",
        "rationale": "Old files load unchanged because the key is optional.",
        "alternatives": [{"option": "A separate due-dates file", "why_not": "two files can drift apart"}],
        "tasks": ["T1", "T2"],
    }],
    "affected_components": ["tasks_demo.store", "tasks_demo.cli"],
    "risks": ["Time zones when comparing dates"],
}


@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The demo's sample repository, measured as the engine measures it for the Analyst."""
    root = make_sample_repo(tmp_path_factory.mktemp("agents") / "project")
    facts = detect_facts(root)
    return {
        "context": render_facts(facts),
        "facts": facts.model_dump(mode="json"),
        "snapshot": snapshot_repository(root).model_dump(mode="json"),
    }


def replay_spec(entries: list[dict[str, Any]]) -> ModelSpec:
    """A replay model with its own cassette: a script of replies by agent and step (lenient), "recorded"
    with gpt-4o-mini so its calls have a recorded cost (never spent)."""
    cassette = {"version": 1, "model": "openai/gpt-4o-mini", "match": "lenient", "entries": entries}
    return ModelSpec(name=f"replay/agents-{uuid.uuid4().hex[:8]}", cassette=cassette)


def reply(role: str, step: str, response: Any, attempt: int = 1) -> dict[str, Any]:
    return {"role": role, "step": step, "attempt": attempt, "response": response,
            "usage": {"input_tokens": 1000 + attempt, "output_tokens": 200 + attempt}}


def agent_call(step: str, model: ModelSpec, sample: dict[str, Any], inputs: dict[str, Any]) -> AgentCall:
    return AgentCall(run_id="run-test-1", step=step, attempt=1, request=REQUEST, project_context=sample["context"],
                     layers=load_layers(), model=model, inputs=inputs, parent_span_id="state-span-1")


def analyst_inputs(sample: dict[str, Any]) -> dict[str, Any]:
    return {"facts": sample["facts"], "snapshot": sample["snapshot"]}


def research_output(sample: dict[str, Any]) -> dict[str, Any]:
    result = Analyst().run(agent_call("analyze", replay_spec([reply("analyst", "analyze", NOTES)]), sample,
                                      analyst_inputs(sample)))
    assert result.ok, result.error
    return result.output


def check_spans(result: AgentResult, model: ModelSpec, calls: int) -> None:
    """One ``invoke_agent <role>`` span and one ``chat <model>`` span per call, with usage."""
    [agent_span] = [s for s in result.spans if s["kind"] == "agent"]
    assert agent_span["name"] == f"invoke_agent {result.role}"
    assert agent_span["parent_id"] == "state-span-1" and agent_span["run_id"] == "run-test-1"
    assert agent_span["attributes"]["gen_ai.usage.input_tokens"] == result.input_tokens
    chats = [s for s in result.spans if s["kind"] == "model"]
    assert [s["name"] for s in chats] == [f"chat {model.name}"] * calls
    assert model.name.startswith("replay/")
    for number, span in enumerate(chats, 1):
        assert span["parent_id"] == agent_span["span_id"]
        assert span["attributes"]["gen_ai.usage.input_tokens"] == 1000 + number
        assert span["attributes"]["gen_ai.usage.output_tokens"] == 200 + number
        assert span["attributes"]["aigentflow.attempt"] == number
        assert span["attributes"]["aigentflow.cost_usd"] == 0
        assert span["attributes"]["aigentflow.replay.recorded_cost_usd"] > 0
        assert span["attributes"]["aigentflow.replay.lenient"] is True
    assert len(result.spans) == 1 + calls


# -- the work breakdown -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tasks", "problem"),
    [
        ([task("T1", "T3"), task("T2", "T1"), task("T3", "T2")], "cycle"),
        ([task("T1"), task("T2", "T9")], "T2 depends on T9, which is not in the breakdown"),
        ([task("T1"), task("T1")], "repeated: T1"),
        ([task("T1"), task("T2", "T2")], "T2 depends on itself"),
    ],
)
def test_work_breakdown_refuses_what_is_not_a_dag(tasks: list[dict[str, Any]], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        WorkBreakdown.model_validate({"tasks": tasks})


def test_work_breakdown_accepts_a_dag_and_orders_it() -> None:
    breakdown = WorkBreakdown.model_validate(
        {"tasks": [task("T3", "T2", "T10"), task("T10"), task("T2", "T1"), task("T1")]}
    )
    assert breakdown.total_hours == 8
    assert topological_order(breakdown) == ["T1", "T10", "T2", "T3"]
    assert topological_order(WorkBreakdown.model_validate(PLAN)) == ["T1", "T2", "T3"]


# -- each role, end to end through litellm ----------------------------------------------------------


def test_analyst_researches_the_request(sample: dict[str, Any]) -> None:
    model = replay_spec([reply("analyst", "analyze", NOTES)])
    result = Analyst().run(agent_call("analyze", model, sample, analyst_inputs(sample)))
    assert result.ok, result.error
    assert result.error_kind is None
    assert result.output["notes"] == NOTES
    assert result.output["request"] == REQUEST
    assert result.output["primary_language"] == "Python" and result.output["test_command"] == "python -m pytest"
    assert result.output["unknown_files"] == []
    research = result.files["research.md"]
    assert NOTES["summary"] in research and "- src/tasks_demo/store.py" in research
    assert "Is a task due today overdue?" in research and "`python -m pytest`" in research
    assert "Not in the repository" not in research
    assert (result.input_tokens, result.output_tokens) == (1001, 201)
    assert result.cost_usd == 0 and len(result.prompt_hashes) == 1, "a replayed answer costs nothing"
    assert result.calls[0]["response"] == NOTES
    check_spans(result, model, calls=1)


def test_analyst_flags_files_the_repository_does_not_have(sample: dict[str, Any]) -> None:
    notes = {**NOTES, "relevant_files": ["src/tasks_demo/store.py", "src/tasks_demo/models.py"]}
    result = Analyst().run(agent_call("analyze", replay_spec([reply("analyst", "analyze", notes)]), sample,
                                      analyst_inputs(sample)))
    assert result.ok, result.error
    assert result.output["unknown_files"] == ["src/tasks_demo/models.py"]
    research = result.files["research.md"]
    assert "## Not in the repository (named by the model)\n\n- src/tasks_demo/models.py" in research


def test_analyst_does_not_flag_existing_files_left_out_of_a_truncated_listing(
    sample: dict[str, Any], tmp_path: Path
) -> None:
    root = make_sample_repo(tmp_path / "project")
    snapshot = snapshot_repository(root, max_files=2).model_dump(mode="json")
    assert snapshot["truncated"] and (root / "src/tasks_demo/store.py").is_file()
    assert "src/tasks_demo/store.py" not in [f["path"] for f in snapshot["files"]]
    notes = {**NOTES, "relevant_files": ["src/tasks_demo/store.py"]}
    result = Analyst().run(agent_call("analyze", replay_spec([reply("analyst", "analyze", notes)]), sample,
                                      {"facts": sample["facts"], "snapshot": snapshot}))
    assert result.ok, result.error
    assert result.output["unknown_files"] == []


def test_project_manager_writes_the_work_breakdown(sample: dict[str, Any]) -> None:
    model = replay_spec([reply("project_manager", "plan", PLAN)])
    result = ProjectManager().run(agent_call("plan", model, sample, {"research": research_output(sample)}))
    assert result.ok, result.error
    assert WorkBreakdown.model_validate(result.output).model_dump(mode="json") == result.output
    assert json.loads(result.files["work_breakdown.json"]) == result.output
    markdown = result.files["work_breakdown.md"]
    assert "3 tasks, 6 hours estimated" in markdown
    assert markdown.index("## T1: Store due dates") < markdown.index("## T2: Add the overdue command")
    assert markdown.index("## T2: Add the overdue command") < markdown.index("## T3: Test overdue listing")
    assert "- Depends on: T1, T2" in markdown and "- [ ] T3 is checked" in markdown
    check_spans(result, model, calls=1)


def test_project_manager_retries_a_cycle_and_succeeds_with_a_dag(sample: dict[str, Any]) -> None:
    cyclic = {"tasks": [task("T1", "T2"), task("T2", "T1")]}
    model = replay_spec([reply("project_manager", "plan", cyclic), reply("project_manager", "plan", PLAN, attempt=2)])
    result = ProjectManager().run(agent_call("plan", model, sample, {"research": research_output(sample)}))
    assert result.ok, result.error
    assert [t["id"] for t in result.output["tasks"]] == ["T1", "T2", "T3"]
    assert [c["attempt"] for c in result.calls] == [1, 2]
    assert len(set(result.prompt_hashes)) == 2
    assert (result.input_tokens, result.output_tokens) == (1001 + 1002, 201 + 202)
    check_spans(result, model, calls=2)
    first_chat = next(s for s in result.spans if s["kind"] == "model")
    assert first_chat["status"] == "error" and "cycle" in first_chat["error"]


def test_architect_writes_recommendations(sample: dict[str, Any]) -> None:
    model = replay_spec([reply("architect", "architect", ARCHITECTURE)])
    inputs = {"research": research_output(sample), "plan": PLAN}
    result = Architect().run(agent_call("architect", model, sample, inputs))
    assert result.ok, result.error
    assert result.output["decisions"][0]["tasks"] == ["T1", "T2"]
    document = result.files["architecture.md"]
    assert "## 1. Where due dates live" in document
    assert "**Rationale:** Old files load unchanged because the key is optional." in document
    assert "- **A separate due-dates file**: not chosen because two files can drift apart" in document
    assert "Shapes tasks: T1, T2" in document and "- tasks_demo.store" in document
    check_spans(result, model, calls=1)


# -- failures are returned, not raised ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("agent", "step"), [(Analyst(), "analyze"), (ProjectManager(), "plan"), (Architect(), "architect")]
)
def test_missing_cassette_entry_is_returned_as_a_failure(sample: dict[str, Any], agent: BaseAgent,
                                                         step: str) -> None:
    model = replay_spec([reply("someone_else", step, {"x": 1})])
    result = agent.run(agent_call(step, model, sample, analyst_inputs(sample)))
    assert not result.ok
    assert result.error_kind == "CassetteMissError"
    assert agent.role in (result.error or "") and f"step {step!r}" in (result.error or "")
    assert result.output == {} and result.files == {} and result.calls == []
    [agent_span] = result.spans
    assert agent_span["name"] == f"invoke_agent {agent.role}" and agent_span["status"] == "error"


def test_gate_raising_run_paused_returns_paused(sample: dict[str, Any]) -> None:
    def gate() -> None:
        raise RunPaused("pause requested by the user")

    model = replay_spec([reply("analyst", "analyze", NOTES)])
    result = Analyst().run(agent_call("analyze", model, sample, analyst_inputs(sample)), gate=gate)
    assert not result.ok
    assert result.error_kind == "paused"
    assert "pause requested" in (result.error or "")
    assert result.calls == [] and result.input_tokens == 0 and result.files == {}


def test_files_holding_secrets_are_withheld_from_the_developers_prompt(monkeypatch) -> None:
    from actors.workflow import withhold_secrets
    from aigentflow.redact import Redactor

    monkeypatch.setenv("MY_SERVICE_TOKEN", "canary-service-token-9f8e7d6c5b4a")
    files = {"app.py": "print('hi')\n", "settings.py": "TOKEN = 'canary-service-token-9f8e7d6c5b4a'\n",
             "keys.py": "OPENAI = 'sk-proj-abcdefghijklmnopqrstuvwxyz0123456789ABCD'\n"}
    kept, withheld = withhold_secrets(files, Redactor.from_environment())
    assert kept == {"app.py": "print('hi')\n"} and withheld == ["keys.py", "settings.py"]
