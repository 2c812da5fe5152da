"""Check a model name, and build the ``ModelSpec`` agents will call (refusing, before a run is recorded
or Ray started, a model that cannot be called)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aigentflow.models.spec import ModelSpec

EXAMPLES = "openai/gpt-4o-mini, anthropic/claude-sonnet-4-5, ollama/llama3, replay/demo"


def check_model_name(name: str) -> None:
    """Refuse a name litellm cannot route, with examples of names it can (by the provider table: no
    litellm import; keys and cassettes are ``preflight.check_models``' part)."""
    from aigentflow.models.preflight import provider_of

    provider_of(name)


def build_model_spec(model_settings: dict[str, Any], cassettes_dir: Path | None, *, record: bool = False) -> ModelSpec:
    """The spec for the run's model; a replay model carries its cassette."""
    from aigentflow.models.cassette import load_cassette, resolve_cassette_path

    name = model_settings["name"]
    cassette, source = None, ""
    if name.startswith("replay/"):
        path = resolve_cassette_path(name[len("replay/"):], cassettes_dir)  # a missing one: where it looked
        cassette, source = load_cassette(path), str(path)
    else:
        from aigentflow.models.preflight import check_models

        check_models([name], cassettes_dir)  # provider known, key variables set: before Ray or any record
    return ModelSpec(
        name=name,
        temperature=model_settings["temperature"],
        timeout_s=model_settings["timeout_s"],
        max_validation_retries=model_settings["max_validation_retries"],
        max_reply_bytes=model_settings["max_reply_bytes"],
        replay_lenient=bool(model_settings.get("replay_lenient", False)),
        record=record,
        max_transient_retries=model_settings.get("max_transient_retries", 3),
        retry_backoff_s=model_settings.get("retry_backoff_s", 1.0),
        cassette=cassette,
        cassette_source=source,
    )
