"""Model calls per minute per tenant: a token bucket per tenant, held by the Model Gateway.

The gateway is one actor per cluster (per agent resource), so its limiter is cluster-wide. A tenant with a
``calls_per_minute`` quota of N has a bucket of N calls, refilled at N/60 a second: a burst of up to N calls,
then one every 60/N seconds. Each call's metadata names its tenant and limit (the run read them from its
store when the step started), so the gateway needs no store of its own.

Over the limit, a call **waits** for its slot when that comes within ``max_wait_s`` (the slot is reserved,
so waiting calls go in order), and otherwise comes back at once as a transient ``RateLimitError`` that
``ModelClient`` retries with its backoff (``model.max_transient_retries``). Waiting keeps short bursts from
failing steps or spending the client's retries; the bound keeps a gateway thread from being held for long
and lets the caller's gate (pause-all, Ctrl-C) be checked between its retries.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

DEFAULT_MAX_WAIT_S = 20.0


class TokenBucket:
    """``per_minute`` calls a minute: holds up to ``per_minute`` tokens, refilled continuously."""

    def __init__(self, per_minute: int, now: float) -> None:
        self.per_minute = per_minute
        self.level = float(per_minute)
        self.at = now

    @property
    def rate(self) -> float:
        """Tokens a second."""
        return self.per_minute / 60.0

    def resize(self, per_minute: int) -> None:
        """A changed limit (``aigentflow tenants quota set``) applies from the next call."""
        self.per_minute = per_minute
        self.level = min(self.level, float(per_minute))

    def reserve(self, now: float, max_wait_s: float) -> float | None:
        """Take a token: seconds to wait before using it (0: now), or None (nothing taken) if longer than
        ``max_wait_s``. A token taken ahead of time is owed (the level goes below zero)."""
        self.level = min(float(self.per_minute), self.level + (now - self.at) * self.rate)
        self.at = now
        wait = 0.0 if self.level >= 1.0 else (1.0 - self.level) / self.rate
        if wait > max_wait_s:
            return None
        self.level -= 1.0
        return wait

    def retry_after(self, now: float) -> float:
        """Seconds until a call would need no wait."""
        level = min(float(self.per_minute), self.level + (now - self.at) * self.rate)
        return max(0.0, (1.0 - level) / self.rate)


class RateLimiter:
    """One ``TokenBucket`` per tenant, thread-safe (the gateway serves many calls at once)."""

    def __init__(self, max_wait_s: float = DEFAULT_MAX_WAIT_S, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_wait_s = max_wait_s
        self.clock = clock
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()

    def reserve(self, tenant_id: str, per_minute: int) -> float | None:
        """Seconds the tenant's call must wait for its slot (0: go now), or None: over the limit beyond the
        wait bound (come back in ``retry_after``)."""
        with self._lock:
            now = self.clock()
            bucket = self._buckets.get(tenant_id)
            if bucket is None:
                bucket = self._buckets[tenant_id] = TokenBucket(per_minute, now)
            elif bucket.per_minute != per_minute:
                bucket.resize(per_minute)
            return bucket.reserve(now, self.max_wait_s)

    def retry_after(self, tenant_id: str) -> float:
        with self._lock:
            bucket = self._buckets.get(tenant_id)
            return 0.0 if bucket is None else bucket.retry_after(self.clock())
