"""Check a model name before a run starts, and build the ``ModelSpec`` agents will call."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aigentflow.exceptions import UsageError
from aigentflow.models.spec import ModelSpec

EXAMPLES = "openai/gpt-4o-mini, anthropic/claude-sonnet-4-5, ollama/llama3, replay/demo"


def check_model_name(name: str) -> None:
    """Refuse a name litellm cannot route, with examples of names it can."""
    if not name or name != name.strip():
        raise UsageError(f"model name {name!r} is empty or has spaces; use a litellm name like {EXAMPLES}.")
    if name.startswith("replay/"):
        return
    import os

    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    import litellm

    litellm.suppress_debug_info = True
    try:
        litellm.get_llm_provider(name)
    except Exception:  # litellm raises its BadRequestError for names it cannot route
        raise UsageError(
            f"unknown model {name!r}: litellm cannot tell which provider serves it. Name models as "
            f"provider/model, e.g. {EXAMPLES}."
        ) from None


def build_model_spec(model_settings: dict[str, Any], cassettes_dir: Path | None, *, record: bool = False) -> ModelSpec:
    """The spec for the run's model; a replay model carries its cassette."""
    from aigentflow.models.cassette import load_cassette, resolve_cassette_path

    name = model_settings["name"]
    check_model_name(name)
    cassette = None
    if name.startswith("replay/"):
        # Recording from a replay model re-records the cassette against today's prompts.
        cassette = load_cassette(resolve_cassette_path(name[len("replay/"):], cassettes_dir))
    return ModelSpec(
        name=name,
        temperature=model_settings["temperature"],
        timeout_s=model_settings["timeout_s"],
        max_validation_retries=model_settings["max_validation_retries"],
        max_reply_bytes=model_settings["max_reply_bytes"],
        replay_strict=model_settings["replay_strict"],
        record=record,
        max_transient_retries=model_settings.get("max_transient_retries", 3),
        retry_backoff_s=model_settings.get("retry_backoff_s", 1.0),
        cassette=cassette,
    )
