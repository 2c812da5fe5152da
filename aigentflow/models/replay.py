"""The replay provider: a litellm ``CustomLLM`` that serves ``replay/<cassette>`` offline.

It answers a prompt only from an entry recorded for that prompt (matched by the prompt's hash, as
recorded) and never invents an answer: a prompt with no recording fails the call at once with an
error naming the agent, the step and the cassette and saying what to do. A lenient replay (asked for
in the call's metadata, or by a cassette marked ``"match": "lenient"``) answers by the (role, step,
attempt) sent in the call's metadata instead, and reports a prompt that differs from the recording
back through the response's ``system_fingerprint``.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
from typing import Any

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import litellm
from litellm import CustomLLM
from litellm.llms.custom_llm import CustomLLMError

from aigentflow.models.cassette import (
    MISS_MARKER,
    EntryKey,
    find_entry,
    find_recorded,
    miss_advice,
    response_text,
)
from aigentflow.models.spec import is_lenient_cassette, prompt_hash

PROVIDER = "replay"
DRIFT_PREFIX = "replay-drift:"
KEY_SEPARATOR = "@"

_INJECTED = {
    "rate_limit": (429, "injected rate limit (429)"),
    "server_error": (503, "injected server error (503)"),
    "timeout": (408, "injected timeout"),
}


class ReplayProvider(CustomLLM):
    """Serves recorded answers; cassettes are loaded into it by name before calls."""

    def __init__(self) -> None:
        super().__init__()
        self._cassettes: dict[str, dict[str, Any]] = {}
        self._failures: dict[tuple[str, str, str, str, int], int] = {}
        self._lock = threading.Lock()

    def load(self, name: str, cassette: dict[str, Any]) -> str:
        """Hold ``cassette``; returns the key to call it by (``replay/<key>``): name and content hash."""
        digest = hashlib.sha256(json.dumps(cassette, sort_keys=True, default=str).encode()).hexdigest()[:12]
        key = f"{name}{KEY_SEPARATOR}{digest}"
        with self._lock:
            self._cassettes.setdefault(key, cassette)
        return key

    def _still_failing(self, entry: dict[str, Any], meta: dict[str, Any], cassette: str) -> bool:
        """An injected error fails every try, or only the first ``error_times`` tries of a run."""
        times = entry.get("error_times")
        if times is None:
            return True
        key = (cassette, str(meta.get("run_id", "")), entry["role"], entry["step"], int(entry.get("attempt", 1)))
        with self._lock:
            self._failures[key] = self._failures.get(key, 0) + 1
            return self._failures[key] <= int(times)

    def completion(self, model: str, messages: list, api_base: str, custom_prompt_dict: dict,  # type: ignore[override]
                   model_response: Any, print_verbose: Any, encoding: Any, api_key: Any, logging_obj: Any,
                   optional_params: dict, acompletion: Any = None, litellm_params: Any = None,
                   logger_fn: Any = None, headers: Any = None, timeout: Any = None, client: Any = None) -> Any:
        meta = ((litellm_params or {}).get("metadata") or {}).get("aigentflow") or {}
        cassette = self._cassettes.get(model)
        model = model.rsplit(KEY_SEPARATOR, 1)[0]  # the cassette's name, for messages
        if cassette is None:
            raise CustomLLMError(status_code=404, message=f"replay: cassette {model!r} is not loaded")
        key = EntryKey(str(meta.get("role", "?")), str(meta.get("step", "?")), int(meta.get("attempt", 1)))
        received = prompt_hash(messages)
        lenient = bool(meta.get("lenient")) or is_lenient_cassette(cassette)
        entry = find_entry(cassette, key) if lenient else find_recorded(cassette, received, key)
        if entry is None:
            where = f"{model!r}" + (f" ({meta['cassette_source']})" if meta.get("cassette_source") else "")
            advice = ("This lenient replay has no entry for that agent, step and attempt either; add one, or "
                      "record the cassette again with --record."
                      if lenient else miss_advice(cassette, key, received))
            raise CustomLLMError(
                status_code=404,
                message=f"replay/{model}: {MISS_MARKER} for this prompt of agent {key.role!r} at step "
                f"{key.step!r} (attempt {key.attempt}, prompt {received}) in cassette {where}. {advice}",
            )
        if entry.get("delay_s"):
            time.sleep(float(entry["delay_s"]))  # recorded latency, for realistic timing in tests and demos
        if entry.get("error") and self._still_failing(entry, meta, model):
            status, text = _INJECTED.get(str(entry["error"]), (500, f"injected error {entry['error']}"))
            raise CustomLLMError(status_code=status, message=f"replay/{model}: {text}")
        recorded = entry.get("prompt_hash")
        drifted = bool(recorded) and recorded != received  # a lenient script's entries may carry no hash
        usage = entry.get("usage") or {}
        text = response_text(entry)
        model_response.choices[0].message.content = text
        model_response.model = f"{PROVIDER}/{model}"
        model_response.system_fingerprint = f"{DRIFT_PREFIX}{recorded}" if drifted else "replay"
        prompt_tokens = int(usage.get("input_tokens", sum(len(str(m.get("content", ""))) // 4 for m in messages)))
        completion_tokens = int(usage.get("output_tokens", len(text) // 4))
        model_response.usage = litellm.Usage(
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            total_tokens=prompt_tokens + completion_tokens,
        )
        return model_response


_provider: ReplayProvider | None = None
_register_lock = threading.Lock()


def replay_provider() -> ReplayProvider:
    """This process's replay provider, registered with litellm on first use."""
    global _provider  # noqa: PLW0603 - registered once per process, on first use
    with _register_lock:
        if _provider is None:
            _provider = ReplayProvider()
            others = [p for p in (litellm.custom_provider_map or []) if p.get("provider") != PROVIDER]
            litellm.custom_provider_map = [*others, {"provider": PROVIDER, "custom_handler": _provider}]
            # litellm reads the map when a provider is first resolved; refresh its registry.
            from litellm.utils import custom_llm_setup

            custom_llm_setup()
        return _provider
