"""What an agent needs to call its model. Plain data: it travels with each agent call."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

REPLAY_PREFIX = "replay/"


@dataclass(frozen=True)
class Deployment:
    """One configured model as litellm calls it (``aigentflow.models.catalog``). Carries the *name* of its
    key's variable, read by the process that calls it (the Model Gateway), never the key."""

    name: str
    """The configured name (``models.<name>``)."""
    provider: str
    litellm_model: str
    """``openai/gpt-4o-mini``, ``anthropic/claude-sonnet-4-5``: what litellm routes and prices."""
    api_base: str = ""
    key_env: str = ""
    input_cost_per_token: float | None = None
    """A configured price (a self-hosted model); none: litellm's cost map prices it."""
    output_cost_per_token: float | None = None


@dataclass(frozen=True)
class ModelSpec:
    """The model an agent calls and how."""

    name: str
    temperature: float = 0.0
    timeout_s: float = 120.0
    max_validation_retries: int = 2
    max_reply_bytes: int = 1_000_000
    replay_lenient: bool = False
    """Replay answers by (role, step, attempt) even when the prompt differs from the recording."""
    record: bool = False
    max_transient_retries: int = 3
    retry_backoff_s: float = 1.0
    cassette: dict[str, Any] | None = field(default=None, compare=False)
    cassette_source: str = ""
    """Where the cassette was read from, for messages."""
    deployments: tuple[Deployment, ...] = ()
    """A configured model: it first, then its fallbacks in order, called through litellm's Router."""
    router_retries: int = 1
    cooldown_s: float = 30.0

    @property
    def is_replay(self) -> bool:
        return self.name.startswith(REPLAY_PREFIX)

    @property
    def cassette_name(self) -> str:
        return self.name[len(REPLAY_PREFIX):] if self.is_replay else ""

    @property
    def lenient(self) -> bool:
        """A replay that answers whatever the prompt: asked for in the settings or by the cassette
        (``"match": "lenient"``, for hand-written scripts). Every output of such a run says so."""
        return self.is_replay and (self.replay_lenient or is_lenient_cassette(self.cassette))


LENIENT = "lenient"
"""A cassette's ``match``: answer by (role, step, attempt) and only warn when the prompt differs."""


LENIENT_NOTICE = ("LENIENT REPLAY: answers were matched by agent and step, not by prompt; they may have been "
                  "recorded for another request, so this run's outputs are not results of its request")
"""Said by every output of a run whose replay model is lenient."""


def is_lenient_cassette(cassette: dict[str, Any] | None) -> bool:
    return bool(cassette) and (cassette or {}).get("match") == LENIENT


def run_is_lenient(settings: dict[str, Any]) -> bool:
    """Whether a recorded run's settings say its replay model was lenient (set when it was recorded)."""
    model = settings.get("model") or {}
    return str(model.get("name", "")).startswith(REPLAY_PREFIX) and bool(model.get("replay_lenient"))


def prompt_hash(messages: list[dict[str, Any]]) -> str:
    """The content hash of a composed prompt, recorded with every model call and cassette entry."""
    import hashlib  # here: `status` imports this module and never hashes

    canonical = json.dumps(
        [{"role": m.get("role"), "content": m.get("content")} for m in messages],
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
