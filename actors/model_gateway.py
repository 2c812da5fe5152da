"""The Model Gateway: the one process per cluster (per agent resource) that talks to litellm.

Agents compose prompts, validate replies, retry, count their budget and check the emergency gate
themselves (``aigentflow.models.client``); the completion goes through here. litellm is imported
once for every agent instead of once per agent process (3-5 s of CPU each), API keys are needed in
this process only, and replay cassettes are loaded once. Threaded: calls wait on providers, not
CPUs. Failures come back as ``TransportError`` values (plain data), never as Ray task errors.

It also holds the tenants' rate limits (``aigentflow.tenants.ratelimit``): a call whose metadata names a
tenant with a ``calls_per_minute`` limit waits for its slot (bounded), or comes back as a transient
``RateLimitError`` that the agent's client retries with backoff.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from aigentflow.models.spec import ModelSpec
from aigentflow.models.transport import Completion, LocalTransport, TransportError
from aigentflow.tenants.ratelimit import DEFAULT_MAX_WAIT_S, RateLimiter


class ModelGateway:
    role = "model_gateway"

    def __init__(self, max_wait_s: float = DEFAULT_MAX_WAIT_S) -> None:
        import litellm  # paid when the gateway starts, not in the first agent's first call

        litellm.suppress_debug_info = True
        self._lock = threading.Lock()
        self.calls = 0
        self.limiter = RateLimiter(max_wait_s)
        self.rate_waited = 0
        self.rate_limited = 0

    def complete(self, spec: ModelSpec, messages: list[dict[str, Any]],
                 metadata: dict[str, Any]) -> Completion | TransportError:
        with self._lock:
            self.calls += 1
        refused = self._rate_limit((metadata or {}).get("aigentflow") or {})
        if refused is not None:
            return refused
        try:
            # Cheap: litellm is imported, and the replay provider keeps each cassette once, by content.
            return LocalTransport(spec).complete(messages, metadata)
        except TransportError as exc:
            return exc
        except Exception as exc:  # noqa: BLE001 - a bad spec (no cassette, ...): the agent reports it, the gateway lives on
            return TransportError(type(exc).__name__, str(exc), transient=False)

    def _rate_limit(self, meta: dict[str, Any]) -> TransportError | None:
        """Wait for the tenant's slot (bounded); a ``RateLimitError`` (transient) when it is further off."""
        per_minute = meta.get("calls_per_minute")
        if not per_minute:
            return None
        tenant = str(meta.get("tenant_id") or "default")
        wait = self.limiter.reserve(tenant, int(per_minute))
        if wait is None:
            with self._lock:
                self.rate_limited += 1
            return TransportError(
                "RateLimitError", f"tenant {tenant} is over its rate limit of {int(per_minute)} model calls per "
                f"minute; a slot frees in {self.limiter.retry_after(tenant):.1f}s (`aigentflow tenants quota show "
                f"{tenant}`)", transient=True)
        if wait > 0:
            with self._lock:
                self.rate_waited += 1
            time.sleep(wait)
        return None

    def stats(self) -> dict[str, int]:
        return {"calls": self.calls, "rate_waited": self.rate_waited, "rate_limited": self.rate_limited}

    def ping(self) -> str:
        return self.role
