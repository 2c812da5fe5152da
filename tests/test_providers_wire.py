"""The three provider types end to end through litellm (its Router) against local servers speaking each
provider's wire format: answers, usage and cost, a 429 then a fallback to another provider, a 500 then a
retry, a timeout then a fallback; the route taken is on the chat span."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import BaseModel

from aigentflow.config.settings import Settings
from aigentflow.exceptions import ModelError
from aigentflow.models.client import ModelClient
from aigentflow.models.names import build_model_spec
from tests.provider_servers import ProviderServer, catalog, serving

MESSAGES = [{"role": "user", "content": "answer with a value"}]


class Answer(BaseModel):
    value: int


@pytest.fixture
def servers(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[ProviderServer, ProviderServer, ProviderServer]]:
    monkeypatch.setenv("TEST_OPENAI_KEY", "sk-test-openai")
    monkeypatch.setenv("TEST_ANTHROPIC_KEY", "sk-ant-test")
    with serving(ProviderServer("openai", seed=1), ProviderServer("anthropic", seed=2),
                 ProviderServer("openai", seed=3)) as running:
        yield running  # type: ignore[misc]


def client(settings: dict[str, Any], name: str, **model: Any) -> ModelClient:
    parsed = Settings.model_validate({**settings, "model": {"name": name, "retry_backoff_s": 0.01, **model}})
    return ModelClient(build_model_spec(parsed.model, None, settings=parsed))


def ask(model: ModelClient) -> Any:
    return model.call_structured(MESSAGES, Answer, role="analyst", step="analyze")


def expected_cost(model: str, input_tokens: int, output_tokens: int) -> float:
    import litellm

    prompt, completion = litellm.cost_per_token(model=model, prompt_tokens=input_tokens,
                                                completion_tokens=output_tokens)
    return prompt + completion


@pytest.mark.parametrize(("name", "index", "litellm_model"), [
    ("gpt", 0, "openai/gpt-4o-mini"), ("claude", 1, "anthropic/claude-sonnet-4-5"), ("llama", 2, None)])
def test_each_provider_answers_with_its_usage_and_cost(servers: tuple[ProviderServer, ...], name: str, index: int,
                                                       litellm_model: str | None) -> None:
    result = ask(client(catalog(*servers), name))
    [call] = result.calls
    served = servers[index].served[-1]
    assert result.output == Answer(value=7)
    assert (call.input_tokens, call.output_tokens) == (served["input_tokens"], served["output_tokens"])
    assert (call.model, call.fallback_from) == (name, "")
    path = "/v1/messages" if index == 1 else "/v1/chat/completions"
    assert servers[index].requests[-1]["path"] == path
    if litellm_model:
        want = expected_cost(litellm_model, served["input_tokens"], served["output_tokens"])
    else:  # the self-hosted model's configured price
        want = served["input_tokens"] * 0.05e-6 + served["output_tokens"] * 0.10e-6
    assert call.cost_usd == pytest.approx(want, rel=1e-9) and call.cost_usd > 0


def test_a_429_falls_back_to_another_provider_and_the_span_says_so(servers: tuple[ProviderServer, ...]) -> None:
    from aigentflow.run.protocol import AgentCall
    from aigentflow.tracing.spans import chat_span

    openai, anthropic, _ = servers
    openai.script = [429, 429]  # the try and the Router's retry (routing.retries = 1)
    model = client(catalog(*servers, models__gpt={"fallbacks": ["claude"]}), "gpt")
    started = time.monotonic()
    result = ask(model)
    elapsed = time.monotonic() - started
    [call] = result.calls
    assert (call.model, call.provider, call.fallback_from) == ("claude", "anthropic", "gpt")
    assert len(anthropic.served) == 1 and not openai.served
    assert elapsed < 5, f"the fallback took {elapsed:.2f} s"
    span = chat_span(AgentCall(run_id="r", step="analyze", attempt=1, request="", project_context="", layers={},
                               model=model.spec),
                     role="analyst", parent_id="p", record=call, start_ns=0)
    attrs = span["attributes"]
    assert attrs["gen_ai.request.model"] == "gpt" and attrs["gen_ai.response.model"] == "claude"
    assert attrs["aigentflow.model.fallback_from"] == "gpt" and attrs["gen_ai.provider.name"] == "anthropic"
    assert attrs["aigentflow.model.router_fallbacks"] == 1
    again = ask(model)  # litellm never cools down a group's only deployment: the primary, recovered, answers
    assert again.calls[0].model == "gpt" and again.calls[0].fallback_from == ""


def test_a_500_is_retried_on_the_same_provider(servers: tuple[ProviderServer, ...]) -> None:
    openai = servers[0]
    openai.script = [500]
    model = client(catalog(*servers), "gpt")
    result = ask(model)
    assert [r["path"] for r in openai.requests] == ["/v1/chat/completions"] * 2
    assert result.calls[-1].model == "gpt" and result.output.value == 7
    assert (result.calls[-1].retries, result.calls[-1].fallbacks) == (1, 0), "inside one call, by the Router"
    assert model.calls_made == 2, "both requests count against the call budget"


def test_a_timeout_falls_back(servers: tuple[ProviderServer, ...]) -> None:
    _, _, local = servers
    local.script = [("sleep", 3)] * 4
    model = client(catalog(*servers, models__llama={"fallbacks": ["gpt"]}, routing={"retries": 0}), "llama",
                   timeout_s=0.5)
    started = time.monotonic()
    result = ask(model)
    assert result.calls[-1].model == "gpt" and result.calls[-1].fallback_from == "llama"
    assert time.monotonic() - started < 3, "it did not wait for the slow server"


def test_every_provider_failing_is_a_clear_error_after_bounded_tries(servers: tuple[ProviderServer, ...]) -> None:
    openai, anthropic, _ = servers
    openai.script, anthropic.script = [503] * 20, [503] * 20
    model = client(catalog(*servers, models__gpt={"fallbacks": ["claude"]}, routing={"retries": 0, "cooldown_s": 0}),
                   "gpt", max_transient_retries=1)
    with pytest.raises(ModelError, match="kept failing transiently"):
        ask(model)
    assert openai.requests and anthropic.requests
    assert len(openai.requests) + len(anthropic.requests) <= 8


def test_a_run_routes_the_analyst_to_a_provider_and_stores_its_cost_per_model(sample_repo: Any,
                                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Through the run's own Orchestrator.equip: routing.rules send the analyst to the configured gpt (a
    local OpenAI server answering with the demo's analysis), the rest of the run replays the demo."""
    import json
    from importlib import resources

    from actors import agent_class
    from actors.orchestrator import Orchestrator
    from aigentflow.run.runner import engine_options
    from aigentflow.run.versions import active_roles
    from tests.test_engine import drive, start, store_of

    demo = json.loads((resources.files("aigentflow") / "cassettes" / "demo.json").read_text())
    analysis = json.dumps(next(e["response"] for e in demo["entries"] if e["role"] == "analyst"))
    monkeypatch.setenv("TEST_OPENAI_KEY", "sk-test-openai")
    with serving(ProviderServer("openai", seed=5, reply=analysis)) as (openai,):
        (sample_repo / ".aigentflow" / "config.toml").write_text(
            f'[providers.openai]\ntype = "openai"\napi_base = "{openai.api_base}"\nkey_env = "TEST_OPENAI_KEY"\n'
            '[models.gpt]\nprovider = "openai"\nmodel = "gpt-4o-mini"\n'
            '[[routing.rules]]\nrole = "analyst"\ntask = "analyze"\nmodel = "gpt"\n')
        paths, run, spec = start(sample_repo)
        orchestrator = Orchestrator(str(paths.root), run.id, engine_options(run, spec))
        orchestrator.roles = active_roles(paths, run.config.agents, run.flags)
        agents: dict[str, Any] = {}
        results: dict[str, Any] = {}

        def invoke(role: str, call: Any) -> Any:
            agents.setdefault(role, agent_class(role)())
            results[role] = agents[role].run(orchestrator.equip(role, call), None)
            return results[role]

        assert drive(paths, run, spec, invoke).state == "COMPLETED"
    [served] = openai.served
    assert served["model"] == "gpt-4o-mini"
    [chat] = [s for s in results["analyst"].spans if s["kind"] == "model"]
    assert chat["attributes"]["gen_ai.request.model"] == "gpt" and chat["attributes"]["gen_ai.response.model"] == "gpt"
    store = store_of(paths)
    by_model = {r["model"]: r for r in store.costs("model", run_id=run.id)}
    assert set(by_model) == {"gpt", "replay/demo"}
    assert by_model["gpt"]["cost_usd"] == pytest.approx(
        expected_cost("openai/gpt-4o-mini", served["input_tokens"], served["output_tokens"]), rel=1e-6)
    assert by_model["replay/demo"]["cost_usd"] == 0, "a replayed call was never paid"
    assert by_model["gpt"]["input_tokens"] == served["input_tokens"]


def test_the_model_gateway_routes_and_the_spec_it_gets_carries_no_key(servers: tuple[ProviderServer, ...]) -> None:
    """The gateway (a plain class here; one Ray actor per cluster in a run) reads the key from its own
    environment: what crosses processes names the variable only."""
    import pickle

    from actors.model_gateway import ModelGateway

    openai, anthropic, _ = servers
    openai.script = [429, 429]
    model = client(catalog(*servers, models__gpt={"fallbacks": ["claude"]}), "gpt")
    shipped = pickle.dumps(model.spec)
    assert b"sk-test-openai" not in shipped and b"sk-ant-test" not in shipped and b"TEST_OPENAI_KEY" in shipped
    reply = ModelGateway().complete(model.spec, MESSAGES, {})
    assert (reply.model, reply.provider, reply.fallback_from) == ("claude", "anthropic", "gpt")
    served = anthropic.served[-1]
    assert reply.cost_usd == pytest.approx(expected_cost("anthropic/claude-sonnet-4-5", served["input_tokens"],
                                                         served["output_tokens"]), rel=1e-9)
