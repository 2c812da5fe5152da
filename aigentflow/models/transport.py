"""How a model call reaches litellm: in this process, or through the shared model gateway actor.

``ModelClient`` (validation, retries, budget, the emergency gate, spans) runs in the agent; only the
completion itself goes through a transport. ``LocalTransport`` imports litellm here (3-5 s of CPU per
process); ``GatewayTransport`` sends the call to the ``ModelGateway`` actor (``actors/model_gateway.py``),
one process per cluster (per agent resource) that imports litellm once for every agent. Agent
actors therefore start in a fraction of a second, and the API keys, the provider's connection pools
and the replay cassettes live in one place. Both raise ``TransportError`` (plain data, so that it
crosses processes) for a failed completion.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any, Protocol

from aigentflow.models.spec import ModelSpec

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

TRANSIENT_ERRORS = ("RateLimitError", "ServiceUnavailableError", "Timeout", "InternalServerError",
                    "BadGatewayError", "APIConnectionError")
"""litellm's exception types worth retrying (by name: the gateway reports the type, not the object)."""
AUTH_ERRORS = ("AuthenticationError", "PermissionDeniedError")
"""Never retried: a refused key stays refused. A missing key (whatever type carries it: the openai SDK's
"Missing credentials" is an InternalServerError) is reported as an AuthenticationError too."""


@dataclass
class Completion:
    """What a completion gave back: the reply text, its usage and cost, and the replay drift marker."""

    text: str
    input_tokens: int
    output_tokens: int
    cost_usd: float
    fingerprint: str = ""
    duration_s: float = 0.0
    recorded_cost_usd: float = 0.0
    """Replay only: what the recorded call cost the model it was recorded with (never spent here)."""
    model: str = ""
    """The model that answered (a configured name, or the litellm name); "" = the one asked for."""
    provider: str = ""
    fallback_from: str = ""
    """The configured model asked for, when one of its fallbacks answered instead."""
    retries: int = 0
    """Requests litellm's Router retried, and fallbacks it tried, inside this one call."""
    fallbacks: int = 0


class TransportError(Exception):
    """A completion failed; ``kind`` is litellm's exception type name, ``transient`` whether to retry."""

    def __init__(self, kind: str, message: str, transient: bool) -> None:
        super().__init__(message)
        self.kind, self.message, self.transient = kind, message, transient

    def __reduce__(self) -> Any:
        return TransportError, (self.kind, self.message, self.transient)


class Transport(Protocol):
    def complete(self, messages: list[dict[str, Any]], metadata: dict[str, Any]) -> Completion: ...


class LocalTransport:
    """Completions through litellm in this process."""

    def __init__(self, spec: ModelSpec) -> None:
        import litellm

        litellm.suppress_debug_info = True
        self._litellm = litellm
        self.spec = spec
        self.model = spec.name
        if spec.is_replay:
            from aigentflow.exceptions import ModelError
            from aigentflow.models.replay import replay_provider

            if spec.cassette is None:
                raise ModelError(f"model {spec.name}: no cassette was loaded for it")
            # Loaded under a key of its content: runs replaying different cassettes of the same name
            # through one shared process never answer from each other's.
            self.model = "replay/" + replay_provider().load(spec.cassette_name, spec.cassette)

    def complete(self, messages: list[dict[str, Any]], metadata: dict[str, Any]) -> Completion:
        started = time.perf_counter()
        answered = None
        try:
            if self.spec.deployments:  # a configured model: litellm's Router, with its fallbacks
                from aigentflow.models.router import complete

                response, answered = complete(self.spec, messages, metadata)
            else:
                response = self._litellm.completion(model=self.model, messages=messages,
                                                    temperature=self.spec.temperature, timeout=self.spec.timeout_s,
                                                    metadata=metadata)
        except Exception as exc:  # noqa: BLE001 - litellm maps every provider failure onto its own exception types
            from aigentflow.models.preflight import is_credential_failure

            kind = type(exc).__name__
            transient = any(isinstance(exc, getattr(self._litellm, name)) for name in TRANSIENT_ERRORS)
            auth = next((name for name in AUTH_ERRORS if isinstance(exc, getattr(self._litellm, name))), None)
            if auth or (not self.spec.is_replay and is_credential_failure(str(exc))):
                kind, transient = auth or "AuthenticationError", False
            raise TransportError(kind, str(exc), transient) from None
        usage = getattr(response, "usage", None)
        input_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
        output_tokens = int(getattr(usage, "completion_tokens", 0) or 0)
        replayed = self.spec.is_replay
        primary = self.spec.deployments[0].name if self.spec.deployments else self.spec.name
        model = answered.name if answered is not None else self.spec.name
        return Completion(text=response.choices[0].message.content or "", input_tokens=input_tokens,
                          output_tokens=output_tokens,
                          cost_usd=0.0 if replayed else self._cost(response),
                          fingerprint=getattr(response, "system_fingerprint", None) or "",
                          duration_s=time.perf_counter() - started,
                          recorded_cost_usd=self._recorded_cost(input_tokens, output_tokens) if replayed else 0.0,
                          model=model,
                          provider=answered.provider if answered is not None else self.spec.name.partition("/")[0],
                          fallback_from=primary if model != primary else "", **_router_attempts(response))

    def _recorded_cost(self, input_tokens: int, output_tokens: int) -> float:
        """What a replayed call cost the model the cassette was recorded with (litellm's cost map)."""
        model = str((self.spec.cassette or {}).get("model") or "")
        if not model or model.startswith("replay/"):
            return 0.0
        try:
            prompt_cost, completion_cost = self._litellm.cost_per_token(
                model=model, prompt_tokens=input_tokens, completion_tokens=output_tokens)
            return float(prompt_cost + completion_cost)
        except Exception:  # noqa: BLE001 - a model missing from the cost map: unknown, shown as 0
            return 0.0

    def _cost(self, response: Any) -> float:
        """What the provider charged: litellm's cost of the reported usage (its cost map's prices, or a
        configured model's own), as litellm computed it for the call."""
        litellm = self._litellm
        hidden = getattr(response, "_hidden_params", None) or {}
        if hidden.get("response_cost") is not None:
            return float(hidden["response_cost"])
        try:
            return float(litellm.completion_cost(completion_response=response))
        except Exception:  # noqa: BLE001 - not every model is in the cost map
            return 0.0


def _router_attempts(response: Any) -> dict[str, int]:
    headers = (getattr(response, "_hidden_params", None) or {}).get("additional_headers") or {}
    return {"retries": int(headers.get("x-litellm-attempted-retries") or 0),
            "fallbacks": int(headers.get("x-litellm-attempted-fallbacks") or 0)}


class GatewayTransport:
    """Completions through the model gateway actor (``handle``); see the module docstring."""

    def __init__(self, spec: ModelSpec, handle: Any) -> None:
        self.spec = spec
        self.handle = handle

    def complete(self, messages: list[dict[str, Any]], metadata: dict[str, Any]) -> Completion:
        import ray

        # The gateway bounds nothing itself: the provider's timeout (spec.timeout_s) is enforced there,
        # and this wait only guards against a gateway that never answers.
        reply = ray.get(self.handle.complete.remote(self.spec, messages, metadata),
                        timeout=self.spec.timeout_s + 60)
        if isinstance(reply, TransportError):
            raise reply
        return reply
