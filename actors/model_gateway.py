"""The Model Gateway: the one process per cluster (per agent resource) that talks to litellm.

Agents compose prompts, validate replies, retry, count their budget and check the emergency gate
themselves (``aigentflow.models.client``); the completion goes through here. litellm is imported
once for every agent instead of once per agent process (3-5 s of CPU each), API keys are needed in
this process only, and replay cassettes are loaded once. Threaded: calls wait on providers, not
CPUs. Failures come back as ``TransportError`` values (plain data), never as Ray task errors.
"""

from __future__ import annotations

import threading
from typing import Any

from aigentflow.models.spec import ModelSpec
from aigentflow.models.transport import Completion, LocalTransport, TransportError


class ModelGateway:
    role = "model_gateway"

    def __init__(self) -> None:
        import litellm  # paid when the gateway starts, not in the first agent's first call

        litellm.suppress_debug_info = True
        self._lock = threading.Lock()
        self.calls = 0

    def complete(self, spec: ModelSpec, messages: list[dict[str, Any]],
                 metadata: dict[str, Any]) -> Completion | TransportError:
        with self._lock:
            self.calls += 1
        try:
            # Cheap: litellm is imported, and the replay provider keeps each cassette once, by content.
            return LocalTransport(spec).complete(messages, metadata)
        except TransportError as exc:
            return exc
        except Exception as exc:  # noqa: BLE001 - a bad spec (no cassette, ...): the agent reports it, the gateway lives on
            return TransportError(type(exc).__name__, str(exc), transient=False)

    def stats(self) -> dict[str, int]:
        return {"calls": self.calls}

    def ping(self) -> str:
        return self.role
