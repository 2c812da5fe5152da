"""The model layer through real litellm: the replay provider serves cassettes; the client validates,
retries, counts cost and honours the gate and the call budget."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from aigentflow.exceptions import (
    CassetteMissError,
    ModelError,
    RunPaused,
    UsageError,
)
from aigentflow.models.cassette import (
    append_entries,
    load_cassette,
    resolve_cassette_path,
)
from aigentflow.models.client import ModelClient, extract_json
from aigentflow.models.names import check_model_name
from aigentflow.models.spec import ModelSpec, prompt_hash

MESSAGES = [
    {"role": "system", "content": "You count things. Reply with JSON."},
    {"role": "user", "content": "How many tasks are overdue?"},
]


class Count(BaseModel):
    """The output the tests ask for."""

    count: int
    note: str = ""


def entry(response: Any, attempt: int = 1, *, role: str = "analyst", step: str = "analyze",
          **extra: Any) -> dict[str, Any]:
    """A cassette entry; a first attempt is recorded for MESSAGES unless ``prompt_hash`` says otherwise."""
    if attempt == 1:
        extra.setdefault("prompt_hash", prompt_hash(MESSAGES))
    return {"role": role, "step": step, "attempt": attempt, "response": response, **extra}


def client_for(entries: list[dict[str, Any]], *, model: str | None = None, gate: Any = None,
               budget: int | None = None, script: bool = False, **spec: Any) -> ModelClient:
    """A client of a replay model whose cassette (under a fresh name) holds ``entries``; a ``script``
    is a lenient cassette, answering by (role, step, attempt) whatever the prompt."""
    cassette: dict[str, Any] = {"version": 1, "entries": entries}
    if model:
        cassette["model"] = model
    if script:
        cassette["match"] = "lenient"
    name = f"replay/test-{uuid.uuid4().hex[:8]}"
    return ModelClient(ModelSpec(name=name, cassette=cassette, **spec), gate=gate, budget=budget)


def ask(client: ModelClient, role: str = "analyst", step: str = "analyze"):
    return client.call_structured(MESSAGES, Count, role=role, step=step)


# -- serving a cassette ---------------------------------------------------------------------------


def test_cassette_entry_is_served_through_litellm_with_its_usage() -> None:
    client = client_for([entry({"count": 3, "note": "three"}, usage={"input_tokens": 120, "output_tokens": 30})])
    result = ask(client)
    assert result.output == Count(count=3, note="three")
    [call] = result.calls
    assert (call.role, call.step, call.attempt) == ("analyst", "analyze", 1)
    assert (call.input_tokens, call.output_tokens) == (120, 30)
    assert call.prompt_hash == prompt_hash(MESSAGES)
    assert call.response == {"count": 3, "note": "three"}
    assert call.drift is None and call.error is None
    assert client.calls_made == 1


def test_a_prompt_recorded_for_another_is_refused_naming_agent_step_and_cassette() -> None:
    recorded = "sha256:" + "0" * 64
    client = client_for([entry({"count": 1}, prompt_hash=recorded)])
    with pytest.raises(CassetteMissError) as caught:
        ask(client)
    message = str(caught.value)
    assert "no recorded answer for this prompt" in message
    assert "'analyst'" in message and "'analyze'" in message and client.spec.cassette_name in message
    assert recorded in message and prompt_hash(MESSAGES) in message, "both hashes, to see what changed"
    assert "--model provider/name" in message and "--record" in message, "says what to do"
    assert client.calls_made == 1, "a miss is not transient: no retry"


def test_an_entry_without_a_prompt_hash_never_answers() -> None:
    with pytest.raises(CassetteMissError):
        ask(client_for([{"role": "analyst", "step": "analyze", "attempt": 1, "response": {"count": 1}}]))


def test_the_recording_of_the_same_prompt_answers_whatever_the_step_is_called() -> None:
    result = ask(client_for([entry({"count": 6}, step="analyze")]), step="analyze.2")
    assert result.output.count == 6 and result.calls[0].drift is None


def test_lenient_replay_answers_by_agent_and_step_and_reports_the_drift() -> None:
    recorded = "sha256:" + "0" * 64
    for client in (client_for([entry({"count": 1}, prompt_hash=recorded)], replay_lenient=True),
                   client_for([entry({"count": 1}, prompt_hash=recorded)], script=True)):
        assert client.spec.lenient
        result = ask(client)
        assert result.output.count == 1
        assert result.calls[0].drift == recorded


def test_lenient_replay_still_never_invents_an_answer() -> None:
    with pytest.raises(CassetteMissError, match="lenient"):
        ask(client_for([entry({"count": 1})], script=True), role="project_manager", step="plan")


def test_missing_entry_names_the_agent_role_and_step() -> None:
    client = client_for([entry({"count": 1}, role="analyst", step="analyze", prompt_hash="sha256:" + "1" * 64)])
    with pytest.raises(CassetteMissError) as caught:
        ask(client, role="project_manager", step="plan")
    message = str(caught.value)
    assert "'project_manager'" in message and "step 'plan'" in message and "attempt 1" in message
    assert "Nothing in the cassette was recorded for this agent and step" in message


def test_injected_errors_raise_model_error_naming_the_kind() -> None:
    with pytest.raises(ModelError) as rate_limited:
        ask(client_for([entry(None, error="rate_limit")], retry_backoff_s=0.01))
    assert "RateLimitError" in str(rate_limited.value) and "rate limit" in str(rate_limited.value)
    assert not isinstance(rate_limited.value, CassetteMissError)

    with pytest.raises(ModelError) as server_error:
        ask(client_for([entry(None, error="server_error")], retry_backoff_s=0.01))
    assert "server error" in str(server_error.value) and "503" in str(server_error.value)


# -- validation and retries -----------------------------------------------------------------------


def test_non_json_reply_is_retried_with_the_problem_fed_back() -> None:
    client = client_for([entry("Sure! I think there are three."), entry({"count": 3}, attempt=2)], script=True)
    result = ask(client)
    assert result.output.count == 3
    first, second = result.calls
    assert (first.attempt, second.attempt) == (1, 2)
    assert first.error is not None and "not JSON" in first.error
    assert first.response == "Sure! I think there are three."
    assert first.prompt_hash == prompt_hash(MESSAGES)
    assert second.prompt_hash != first.prompt_hash  # the retry carries the reply and the problem
    assert second.error is None


def test_retry_prompt_contains_the_validation_problem() -> None:
    """Replay proves what the second call sent: the entry was recorded for that prompt."""
    bad_reply = "no json here"
    problem = "the reply is not JSON (Expecting value: line 1 column 1 (char 0))"
    retry_messages = [
        *MESSAGES,
        {"role": "assistant", "content": bad_reply},
        {"role": "user", "content": "Your reply could not be used: " + problem
         + "\nReply again with only one JSON object that matches the schema."},
    ]
    client = client_for([entry(bad_reply), entry({"count": 4}, attempt=2, prompt_hash=prompt_hash(retry_messages))])
    result = ask(client)
    assert result.output.count == 4
    assert result.calls[0].error == problem


def test_reply_breaking_the_schema_on_every_attempt_fails_naming_schema_and_attempts() -> None:
    client = client_for([entry({"count": "many"}, attempt=n) for n in (1, 2, 3)], max_validation_retries=2,
                        script=True)
    with pytest.raises(ModelError, match="attempts") as caught:
        ask(client)
    assert type(caught.value) is ModelError
    message = str(caught.value)
    assert "Count" in message and "3 attempts" in message and "count" in message
    assert [c.attempt for c in caught.value.calls] == [1, 2, 3]
    assert all("broke the schema" in (c.error or "") for c in caught.value.calls)


def test_reply_over_max_reply_bytes_is_refused_and_retried() -> None:
    huge = {"count": 1, "note": "x" * 500}
    client = client_for([entry(huge), entry({"count": 2}, attempt=2)], max_reply_bytes=200, script=True)
    result = ask(client)
    assert result.output.count == 2
    assert "over the limit of 200" in (result.calls[0].error or "")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"count": 1}', {"count": 1}),
        ('```json\n{"count": 2}\n```', {"count": 2}),
        ('Here you go:\n```\n{"count": 3}\n```\nAnything else?', {"count": 3}),
        ('The answer is {"count": 4, "note": "{nested}"} as requested.', {"count": 4, "note": "{nested}"}),
    ],
)
def test_extract_json_finds_the_object(text: str, expected: dict[str, Any]) -> None:
    assert extract_json(text) == expected


def test_extract_json_refuses_text_without_json() -> None:
    with pytest.raises(ValueError, match="not JSON"):
        extract_json("there are three tasks")


# -- budget, gate, cost ---------------------------------------------------------------------------


def test_budget_stops_a_step_that_needs_more_calls() -> None:
    client = client_for([entry("not json"), entry({"count": 1}, attempt=2)], budget=1, script=True)
    with pytest.raises(ModelError, match="budget"):
        ask(client)
    assert client.calls_made == 1


def test_gate_raising_run_paused_stops_before_any_call() -> None:
    def paused() -> None:
        raise RunPaused("emergency stop requested")

    client = client_for([], gate=paused)
    with pytest.raises(RunPaused, match="emergency stop") as caught:
        ask(client)  # an empty cassette: a call that got through would raise CassetteMissError
    assert client.calls_made == 0
    assert caught.value.calls == []


def test_a_replayed_call_costs_nothing_and_keeps_what_the_recording_cost() -> None:
    import litellm

    usage = {"input_tokens": 1000, "output_tokens": 500}
    result = ask(client_for([entry({"count": 1}, usage=usage)], model="openai/gpt-4o-mini"))
    prompt_cost, completion_cost = litellm.cost_per_token(model="openai/gpt-4o-mini", prompt_tokens=1000,
                                                          completion_tokens=500)
    assert result.calls[0].cost_usd == 0, "nothing was paid for a replayed answer"
    assert result.calls[0].recorded_cost_usd == pytest.approx(prompt_cost + completion_cost)


def test_cassette_without_model_costs_nothing() -> None:
    result = ask(client_for([entry({"count": 1}, usage={"input_tokens": 1000, "output_tokens": 500})]))
    assert result.calls[0].cost_usd == 0


# -- model names and cassette files ----------------------------------------------------------------


@pytest.mark.parametrize("name", ["openai/gpt-4o-mini", "anthropic/claude-sonnet-4-5", "replay/demo"])
def test_check_model_name_accepts_routable_names(name: str) -> None:
    assert check_model_name(name) is None


@pytest.mark.parametrize("name", ["not-a-model", "", " openai/gpt-4o-mini"])
def test_check_model_name_refuses_with_examples(name: str) -> None:
    with pytest.raises(UsageError, match="openai/gpt-4o-mini") as caught:
        check_model_name(name)
    assert repr(name) in str(caught.value)


def test_resolve_cassette_path_shipped_project_and_unknown(tmp_path: Path) -> None:
    shipped = resolve_cassette_path("demo")
    assert shipped.name == "demo.json" and shipped.is_file()
    assert load_cassette(shipped)["entries"]

    project = tmp_path / "cassettes"
    project.mkdir()
    (project / "mine.json").write_text(json.dumps({"entries": []}))
    assert resolve_cassette_path("mine", project) == project / "mine.json"
    (project / "demo.json").write_text(json.dumps({"entries": []}))
    assert resolve_cassette_path("demo", project) == project / "demo.json"  # the project's wins

    explicit = tmp_path / "elsewhere" / "take.json"
    explicit.parent.mkdir()
    explicit.write_text(json.dumps({"entries": []}))
    assert resolve_cassette_path(str(explicit)) == explicit

    with pytest.raises(UsageError, match="Shipped cassettes: demo") as caught:
        resolve_cassette_path("nope", project)
    assert "nope" in str(caught.value) and "--record" in str(caught.value)


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "unreadable"),
        ("[1, 2]", "needs an object with an 'entries' list"),
        ('{"entries": {"role": "analyst"}}', "needs an object with an 'entries' list"),
        ('{"entries": [{"role": "analyst"}]}', "entry 0 needs 'role' and 'step'"),
        ('{"entries": ["analyst"]}', "entry 0 needs 'role' and 'step'"),
    ],
)
def test_load_cassette_refuses_malformed_files(tmp_path: Path, content: str, problem: str) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(UsageError, match=problem) as caught:
        load_cassette(path)
    assert str(path) in str(caught.value)


def test_load_cassette_refuses_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="unreadable"):
        load_cassette(tmp_path / "absent.json")


def test_append_entries_replaces_same_key_entries_and_writes_valid_json(tmp_path: Path) -> None:
    path = tmp_path / "rec" / "take.json"
    append_entries(path, [entry({"count": 1}), entry({"count": 9}, role="architect", step="architect")],
                   model="openai/gpt-4o-mini")
    append_entries(path, [entry({"count": 2}), entry({"count": 5}, attempt=2)], model="anthropic/other")

    data = json.loads(path.read_text())
    assert data["model"] == "openai/gpt-4o-mini" and data["version"] == 1
    by_key = {(e["role"], e["step"], e["attempt"]): e["response"] for e in data["entries"]}
    assert by_key == {
        ("analyst", "analyze", 1): {"count": 2},
        ("analyst", "analyze", 2): {"count": 5},
        ("architect", "architect", 1): {"count": 9},
    }
    assert len(data["entries"]) == 3
    assert load_cassette(path) == data
    assert [p.name for p in path.parent.iterdir()] == ["take.json"]  # no temporary files left


# -- tool calls (MCP tools reach the model as a JSON protocol) ------------------------------------


def test_a_tool_request_is_run_and_its_results_go_back_before_the_answer() -> None:
    request = {"tool_calls": [{"tool": "clock/now", "arguments": {"zone": "UTC"}}]}
    client = client_for([entry(request), entry({"count": 2, "note": "after the tool"}, attempt=2)], script=True)
    seen: list[list[dict[str, Any]]] = []

    def tools(calls: list[dict[str, Any]]) -> str:
        seen.append(calls)
        return "Tool results: [clock/now] 12:00"

    result = client.call_structured(MESSAGES, Count, role="analyst", step="analyze", tools=tools, max_tool_rounds=2)
    assert result.output == Count(count=2, note="after the tool")
    assert seen == [[{"tool": "clock/now", "arguments": {"zone": "UTC"}}]]
    assert [c.attempt for c in result.calls] == [1, 2]


def test_tool_rounds_are_bounded_and_a_malformed_request_is_fed_back() -> None:
    again = {"tool_calls": [{"tool": "clock/now", "arguments": {}}]}
    client = client_for([entry(again), entry(again, attempt=2), entry({"tool_calls": [{"arguments": {}}]}, attempt=3),
                         entry({"count": 1}, attempt=4)], script=True)
    result = client.call_structured(MESSAGES, Count, role="analyst", step="analyze",
                                    tools=lambda calls: "Tool results: ok", max_tool_rounds=1)
    assert result.output == Count(count=1)
    assert "after 1 round(s) of tool calls" in result.calls[1].error
    assert "needs \"tool\"" in result.calls[2].error


def test_without_tools_a_tool_request_is_just_an_unusable_reply() -> None:
    client = client_for([entry({"tool_calls": [{"tool": "clock/now", "arguments": {}}]}),
                         entry({"count": 5}, attempt=2)],
                        script=True)
    result = ask(client)
    assert result.output == Count(count=5) and result.calls[0].error
