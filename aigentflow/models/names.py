"""Check a model name, and build the ``ModelSpec`` agents will call (refusing, before a run is recorded
or Ray started, a model that cannot be called)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from aigentflow.exceptions import UsageError
from aigentflow.models.spec import ModelSpec

if TYPE_CHECKING:
    from aigentflow.config.settings import ModelSettings

EXAMPLES = "openai/gpt-4o-mini, anthropic/claude-sonnet-4-5, ollama/llama3, replay/demo"


def check_model_name(name: str) -> None:
    """Refuse a name litellm cannot route, with examples of names it can (by the provider table: no
    litellm import; keys and cassettes are ``preflight.check_models``' part)."""
    from aigentflow.models.preflight import provider_of

    provider_of(name)


def build_model_spec(model: ModelSettings, cassettes_dir: Path | None, *, record: bool = False,
                     settings: Any = None) -> ModelSpec:
    """The spec for the run's model (its ``model`` settings); a replay model carries its cassette, a
    configured one (``models.<name>`` in ``settings``) its deployments, fallbacks after it."""
    from aigentflow.models import catalog
    from aigentflow.models.cassette import load_cassette, resolve_cassette_path

    name = model.name
    cassette, source = None, ""
    deployments: tuple = ()
    if name.startswith("replay/"):
        path = resolve_cassette_path(name[len("replay/"):], cassettes_dir)  # a missing one: where it looked
        cassette, source = load_cassette(path), str(path)
    elif catalog.is_configured(settings, name):
        catalog.check_keys(settings, [name])  # every key of it and its fallbacks, before Ray or any record
        deployments = catalog.chain(settings, name)
    else:
        from aigentflow.models.preflight import check_models

        try:
            check_models([name], cassettes_dir)  # provider known, key variables set: before Ray or any record
        except UsageError as exc:
            if "unknown model" in str(exc) and settings is not None:
                raise catalog.unknown_model(settings, name, str(exc)) from None
            raise
    routing = getattr(settings, "routing", None)
    return ModelSpec(
        name=name,
        temperature=model.temperature,
        timeout_s=model.timeout_s,
        max_validation_retries=model.max_validation_retries,
        max_reply_bytes=model.max_reply_bytes,
        replay_lenient=model.replay_lenient,
        record=record,
        max_transient_retries=model.max_transient_retries,
        retry_backoff_s=model.retry_backoff_s,
        cassette=cassette,
        cassette_source=source,
        deployments=deployments,
        router_retries=routing.retries if routing is not None else 1,
        cooldown_s=routing.cooldown_s if routing is not None else 30.0,
    )
