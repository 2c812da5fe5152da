"""The model catalogue's settings: named providers, the models they serve, and the routing rules.

``providers.<name>`` says how to reach a provider (its type, its ``api_base``, the *name* of the
environment variable holding its key: a key's value never appears in configuration);
``models.<name>`` maps a name runs use to a provider's model, with capability tags, an expected
latency, a price where litellm's cost map has none (a self-hosted model) and fallbacks;
``routing.rules`` picks a model per role and per task (step). Cross-references are checked when the
configuration loads (``check_catalog``), each unknown name with a did-you-mean.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

ProviderType = Literal["openai", "anthropic", "openai-compatible"]

LITELLM_PREFIX: dict[str, str] = {"openai": "openai", "anthropic": "anthropic", "openai-compatible": "openai"}
"""How litellm is told each provider type (an OpenAI-compatible server, Ollama's or vLLM's ``/v1``,
goes through litellm's OpenAI client with the server's ``api_base``)."""
DEFAULT_KEY_ENV: dict[str, str] = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY",
                                   "openai-compatible": ""}
"""The variable a provider's key is read from unless ``key_env`` names another ("": no key needed)."""

_VARIABLE = re.compile(r"[A-Z_][A-Z0-9_]*")
MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")


class ProviderSettings(BaseModel):
    """One provider: how litellm reaches it (``providers.<name>``)."""

    model_config = ConfigDict(extra="forbid")

    type: ProviderType = Field(description="openai, anthropic, or openai-compatible (Ollama, vLLM, a gateway).")
    api_base: str = Field("", description='Its endpoint ("" = the provider\'s own; needed for openai-compatible).')
    key_env: str | None = Field(
        None, description="The environment variable holding its key (never the key itself); none: the type's "
        "usual one (OPENAI_API_KEY, ANTHROPIC_API_KEY; an openai-compatible server needs none).")

    @field_validator("key_env")
    @classmethod
    def _a_name(cls, value: str | None) -> str | None:
        if value and not _VARIABLE.fullmatch(value):
            raise ValueError("key_env names the environment variable that holds the key (e.g. OPENAI_API_KEY), "
                             "in capitals, digits and _; never put the key itself in the configuration")
        return value

    @property
    def key_variable(self) -> str:
        return DEFAULT_KEY_ENV[self.type] if self.key_env is None else self.key_env


class ConfiguredModel(BaseModel):
    """A model runs can name (``models.<name>``): which provider serves it and what it is good for."""

    model_config = ConfigDict(extra="forbid")

    provider: str = Field(description="The provider that serves it (a name under providers).")
    model: str = Field(description="The provider's name for the model (gpt-4o-mini, claude-sonnet-4-5, llama3).")
    tags: list[str] = Field(default_factory=list, description="Capabilities routing rules ask for (code, fast...).")
    latency_ms: float | None = Field(None, gt=0, description="Expected latency of a call, for prefer = latency.")
    input_cost_per_mtok: float | None = Field(
        None, ge=0, description="USD per million input tokens, where litellm's cost map has no price.")
    output_cost_per_mtok: float | None = Field(
        None, ge=0, description="USD per million output tokens, where litellm's cost map has no price.")
    fallbacks: list[str] = Field(default_factory=list,
                                 description="Models (names under models) tried in turn on errors and rate limits.")


class RoutingRule(BaseModel):
    """A rule: calls of ``role`` at step ``task`` go to ``model``, or to the best model with ``require``'s tags."""

    model_config = ConfigDict(extra="forbid")

    role: str = Field("*", description='The role it applies to ("*" = any).')
    task: str = Field("*", description='The task (step: analyze, plan, build, review...) it applies to ("*" = any).')
    model: str | None = Field(None, description="The model to use (a name under models); none: chosen by tags.")
    require: list[str] = Field(default_factory=list, description="Tags a chosen model must have.")
    max_cost_per_mtok: float | None = Field(
        None, ge=0, description="Most a chosen model may cost, USD per million input + output tokens.")
    prefer: Literal["cost", "latency", "order"] = Field(
        "cost", description="Among the models that qualify: the cheapest, the fastest, or the first listed.")


class RoutingSettings(BaseModel):
    """Routing per role and task, and litellm Router's retries and cooldowns (``routing``)."""

    model_config = ConfigDict(extra="forbid")

    rules: list[RoutingRule] = Field(default_factory=list, description="Checked in order; the first that matches.")
    retries: int = Field(1, ge=0, le=5, description="Router retries of a deployment before its fallbacks.")
    cooldown_s: float = Field(30.0, ge=0, description="Seconds a deployment that failed is skipped (rate limits).")


def did_you_mean(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def check_catalog(providers: Mapping[str, ProviderSettings], models: Mapping[str, ConfiguredModel],
                  routing: RoutingSettings) -> None:
    """ValueError naming the first dangling reference (a model's provider, a fallback, a rule's model)."""
    known_providers = ", ".join(sorted(providers)) or "none configured"
    for name, provider in providers.items():
        if provider.type == "openai-compatible" and not provider.api_base:
            raise ValueError(f"providers.{name}: an openai-compatible provider needs api_base "
                             "(e.g. http://localhost:11434/v1 for Ollama)")
    for name, entry in models.items():
        if not MODEL_NAME.fullmatch(name):
            raise ValueError(f"models.{name}: a model's name is letters, digits, '.', '_' and '-' (no '/')")
        if entry.provider not in providers:
            raise ValueError(f"models.{name}: unknown provider {entry.provider!r}"
                             f"{did_you_mean(entry.provider, providers)}; providers: {known_providers}")
        for fallback in entry.fallbacks:
            if fallback not in models or fallback == name:
                raise ValueError(f"models.{name}.fallbacks: {fallback!r} is not another configured model"
                                 f"{did_you_mean(fallback, models)}")
    for number, rule in enumerate(routing.rules):
        if rule.model is not None and rule.model not in models:
            raise ValueError(f"routing.rules[{number}]: unknown model {rule.model!r}{did_you_mean(rule.model, models)}"
                             f"; models: {', '.join(sorted(models)) or 'none configured'}")
        if rule.model is None and not models:
            raise ValueError(f"routing.rules[{number}] chooses among configured models, and none are configured")
