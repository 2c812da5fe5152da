"""What an agent needs to call its model. Plain data: it travels with each agent call."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

REPLAY_PREFIX = "replay/"


@dataclass(frozen=True)
class ModelSpec:
    """The model an agent calls and how."""

    name: str
    temperature: float = 0.0
    timeout_s: float = 120.0
    max_validation_retries: int = 2
    max_reply_bytes: int = 1_000_000
    replay_strict: bool = False
    record: bool = False
    max_transient_retries: int = 3
    retry_backoff_s: float = 1.0
    cassette: dict[str, Any] | None = field(default=None, compare=False)

    @property
    def is_replay(self) -> bool:
        return self.name.startswith(REPLAY_PREFIX)

    @property
    def cassette_name(self) -> str:
        return self.name[len(REPLAY_PREFIX):] if self.is_replay else ""


def prompt_hash(messages: list[dict[str, Any]]) -> str:
    """The content hash of a composed prompt, recorded with every model call and cassette entry."""
    canonical = json.dumps(
        [{"role": m.get("role"), "content": m.get("content")} for m in messages],
        sort_keys=True,
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()
