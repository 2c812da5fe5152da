"""Model calls per minute per tenant: the token bucket (with a clock the test moves), then the Model Gateway
(a plain class, as one Ray actor per cluster would run it) waiting for a slot or answering a transient
RateLimitError that ModelClient retries. The model is the demo's replay cassette."""

from __future__ import annotations

import time
from typing import Any

import pytest

from aigentflow.config.settings import Settings
from aigentflow.models.client import ModelClient
from aigentflow.models.names import build_model_spec
from aigentflow.models.transport import TransportError
from aigentflow.tenants.quotas import Allowance
from aigentflow.tenants.ratelimit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_tenant_gets_a_burst_of_its_limit_then_a_slot_every_60_over_n_seconds() -> None:
    clock = Clock()
    limiter = RateLimiter(max_wait_s=5.0, clock=clock)
    assert [limiter.reserve("acme", 6) for _ in range(6)] == [0.0] * 6
    assert limiter.reserve("acme", 6) is None, "the 7th would wait 10 s, over a bound of 5 s"
    limiter = RateLimiter(max_wait_s=15.0, clock=clock)
    for _ in range(6):
        limiter.reserve("acme", 6)
    assert limiter.reserve("acme", 6) == pytest.approx(10.0), "the 7th waits for the refill of one (10 s)"
    assert limiter.reserve("acme", 6) is None, "the 8th would wait 20 s: over the bound, nothing reserved"
    assert limiter.retry_after("acme") == pytest.approx(20.0)
    assert limiter.reserve("globex", 6) == 0.0, "each tenant has its own bucket"
    clock.now += 30.0  # 3 refilled, 1 owed by the reserved 7th
    assert [limiter.reserve("acme", 6) for _ in range(2)] == [0.0, 0.0]
    assert limiter.reserve("acme", 6) == pytest.approx(10.0)


def test_a_lowered_limit_applies_from_the_next_call() -> None:
    clock = Clock()
    limiter = RateLimiter(max_wait_s=0.0, clock=clock)
    assert all(limiter.reserve("acme", 100) == 0.0 for _ in range(3))
    assert [limiter.reserve("acme", 2) for _ in range(3)] == [0.0, 0.0, None]


@pytest.fixture(scope="module")
def demo_spec() -> Any:
    settings = Settings.model_validate({"model": {"name": "replay/demo", "retry_backoff_s": 0.3}})
    return build_model_spec(settings.model, None, settings=settings)


def metadata(tenant: str, per_minute: int | None) -> dict[str, Any]:
    return {"aigentflow": {"role": "analyst", "step": "analyze", "attempt": 1, "run_id": "r", "lenient": True,
                           "tenant_id": tenant, "calls_per_minute": per_minute}}


MESSAGES = [{"role": "user", "content": "analyze"}]


def test_the_gateway_waits_for_a_slot_then_refuses_transiently_beyond_its_bound(demo_spec: Any) -> None:
    from actors.model_gateway import ModelGateway

    gateway = ModelGateway(max_wait_s=1.5)
    assert gateway.complete(demo_spec, MESSAGES, metadata("acme", 60)).input_tokens > 0  # within its burst: at once
    for _ in range(60):  # 60 a minute: a burst of 60, then one a second; all spent, as other calls would
        assert gateway.limiter.reserve("initech", 60) == 0.0
    started = time.perf_counter()
    waited = gateway.complete(demo_spec, MESSAGES, metadata("initech", 60))
    assert not isinstance(waited, TransportError) and waited.text
    assert time.perf_counter() - started >= 0.9, "it waited for the next slot (1 s)"
    gateway.limiter.reserve("initech", 60)  # the slot after next: 1 s more
    refused = gateway.complete(demo_spec, MESSAGES, metadata("initech", 60))
    assert isinstance(refused, TransportError) and refused.transient and refused.kind == "RateLimitError"
    assert "tenant initech is over its rate limit of 60 model calls per minute" in refused.message
    assert not isinstance(gateway.complete(demo_spec, MESSAGES, metadata("globex", 60)), TransportError)
    assert not isinstance(gateway.complete(demo_spec, MESSAGES, metadata("acme", None)), TransportError), \
        "a call without a limit is not held"
    assert gateway.stats() == {"calls": 5, "rate_waited": 1, "rate_limited": 1}


class ThroughGateway:
    """ModelClient's transport to a gateway in this process (a ``GatewayTransport`` without Ray)."""

    def __init__(self, gateway: Any, spec: Any) -> None:
        self.gateway, self.spec = gateway, spec

    def complete(self, messages: list[dict[str, Any]], meta: dict[str, Any]) -> Any:
        reply = self.gateway.complete(self.spec, messages, {"aigentflow": {**meta["aigentflow"], "lenient": True}})
        if isinstance(reply, TransportError):
            raise reply
        return reply


def test_the_clients_retry_gets_a_rate_limited_call_through_once_a_slot_frees(demo_spec: Any) -> None:
    from pydantic import BaseModel

    from actors.model_gateway import ModelGateway

    class Analysis(BaseModel):
        model_config = {"extra": "allow"}

    gateway = ModelGateway(max_wait_s=0.0)  # never waits: every call over the limit is refused at once
    for _ in range(600):  # 600 a minute = one slot every 0.1 s, all spent
        gateway.limiter.reserve("acme", 600)
    client = ModelClient(demo_spec, transport=ThroughGateway(gateway, demo_spec),
                         quota=Allowance("acme", calls_per_minute=600))
    result = client.call_structured(MESSAGES, Analysis, role="analyst", step="analyze")
    assert [c.transient for c in result.calls] == [True, False], "refused once, retried after its backoff"
    assert result.calls[0].error.startswith("RateLimitError: tenant acme is over its rate limit")
    assert gateway.stats()["rate_limited"] == 1
