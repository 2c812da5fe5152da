"""Configured providers and models, routing rules and bad input: `aigentflow models list|check`, a run
refused before Ray (unknown model with a did-you-mean, an unset key variable named), never a key's value."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from aigentflow.config.settings import Settings
from aigentflow.exceptions import UsageError
from aigentflow.models.routing import route, targets
from tests.conftest import DEMO_REQUEST, aigentflow, cli_env

CONFIG = """
[providers.openai]
type = "openai"
key_env = "ACME_OPENAI_KEY"

[providers.anthropic]
type = "anthropic"

[providers.ollama]
type = "openai-compatible"
api_base = "http://127.0.0.1:11434/v1"

[models.gpt]
provider = "openai"
model = "gpt-4o-mini"
tags = ["fast", "cheap"]
latency_ms = 400
fallbacks = ["claude"]

[models.claude]
provider = "anthropic"
model = "claude-sonnet-4-5"
tags = ["code", "long-context"]
latency_ms = 1500

[models.llama]
provider = "ollama"
model = "llama3.1:8b"
tags = ["fast", "private"]
latency_ms = 150

[[routing.rules]]
role = "architect"
model = "claude"

[[routing.rules]]
task = "review"
require = ["code"]

[[routing.rules]]
role = "analyst"
require = ["fast"]
prefer = "latency"
"""


def settings(**extra: Any) -> Settings:
    import tomllib

    return Settings.model_validate({**tomllib.loads(CONFIG), **extra})


def configured(repo: Path, text: str = CONFIG) -> Path:
    (repo / ".aigentflow" / "config.toml").write_text(
        (repo / ".aigentflow" / "config.toml").read_text() + "\n" + text if (repo / ".aigentflow" / "config.toml")
        .exists() else text)
    return repo


def keyed(**keys: str) -> dict[str, str]:
    env = {k: v for k, v in cli_env().items() if k not in ("ACME_OPENAI_KEY", "ANTHROPIC_API_KEY")}
    return {**env, **keys}


# -- routing ---------------------------------------------------------------------------------------------


def test_rules_pick_the_model_per_role_and_task() -> None:
    chosen = settings()
    assert route(chosen, "architect", "architect") == ("claude", "routing.rules[0]")
    assert route(chosen, "reviewer", "review") == ("claude", "routing.rules[1]"), "the only model tagged code"
    assert route(chosen, "reviewer", "review/T2/1") == ("claude", "routing.rules[1]"), "a build task's review"
    assert route(chosen, "analyst", "analyze") == ("llama", "routing.rules[2]"), "the fastest of the fast ones"
    assert route(chosen, "backend_developer", "build") is None, "no rule: the role's or the run's model"
    assert targets(chosen) == ["claude", "llama"]


def test_prefer_cost_and_a_price_ceiling_use_litellms_cost_map() -> None:
    rules = {"rules": [{"role": "analyst", "require": ["fast"], "prefer": "cost", "max_cost_per_mtok": 1.0},
                       {"role": "tester", "require": ["code"], "max_cost_per_mtok": 1.0}]}
    chosen = settings(routing=rules)
    # llama is unpriced (self-hosted, nothing in the cost map): 0 beats gpt-4o-mini's $0.75/Mtok
    assert route(chosen, "analyst", "analyze")[0] == "llama"
    priced = settings(routing=rules, models={**settings().model_dump()["models"],
                                             "llama": {"provider": "ollama", "model": "llama3.1:8b",
                                                       "tags": ["fast"], "input_cost_per_mtok": 2.0}})
    assert route(priced, "analyst", "analyze")[0] == "gpt", "gpt-4o-mini costs $0.15 + $0.60 per Mtok"
    with pytest.raises(UsageError, match=r"routing.rules\[1\] .* finds no configured model with tags \['code'\]"):
        route(chosen, "tester", "test.2")


@pytest.mark.parametrize(("change", "message"), [
    ({"models": {"gpt": {"provider": "opena", "model": "gpt-4o-mini"}}},
     "unknown provider 'opena' (did you mean 'openai'?)"),
    ({"routing": {"rules": [{"model": "cluade"}]}}, "unknown model 'cluade' (did you mean 'claude'?)"),
    ({"models": {"gpt": {"provider": "openai", "model": "x", "fallbacks": ["gtp"]}}},
     "'gtp' is not another configured"),
    ({"providers": {"openai": {"type": "openai", "key_env": "sk-live-123"}}}, "never put the key itself"),
    ({"providers": {"ollama": {"type": "openai-compatible"}}}, "needs api_base"),
])
def test_bad_catalogues_are_refused_naming_the_reference(change: dict[str, Any], message: str) -> None:
    import tomllib

    data = tomllib.loads(CONFIG)
    for section, value in change.items():
        data[section] = {**data[section], **value}
    with pytest.raises(ValueError, match=re.escape(message)):
        Settings.model_validate(data)


# -- the commands ----------------------------------------------------------------------------------------


def test_models_list_shows_providers_models_prices_and_keys_never_their_values(sample_repo: Path) -> None:
    repo = configured(sample_repo)
    result = aigentflow("models", "list", "--json", cwd=repo, env=keyed(ACME_OPENAI_KEY="sk-secret-value-1"))
    assert result.returncode == 0, result.stderr
    assert "sk-secret-value-1" not in result.stdout + result.stderr
    report = json.loads(result.stdout)
    keys = {p["name"]: (p["key_env"], p["key_set"]) for p in report["providers"]}
    assert keys == {"openai": ("ACME_OPENAI_KEY", True), "anthropic": ("ANTHROPIC_API_KEY", False),
                    "ollama": ("", True)}
    models = {m["name"]: m for m in report["models"]}
    assert models["gpt"]["input_per_1k_usd"] == pytest.approx(0.00015)  # litellm's cost map: $0.15/Mtok
    assert models["gpt"]["output_per_1k_usd"] == pytest.approx(0.0006)
    assert models["claude"]["litellm_model"] == "anthropic/claude-sonnet-4-5"
    assert models["llama"]["price_source"] == "unpriced"
    text = aigentflow("models", "list", cwd=repo, env=keyed())
    assert "ANTHROPIC_API_KEY (NOT SET)" in text.stdout and "0.000150" in text.stdout


def test_models_list_imports_neither_litellm_nor_ray(sample_repo: Path) -> None:
    repo = configured(sample_repo)
    probe = subprocess.run([sys.executable, "-X", "importtime", "-m", "aigentflow", "models", "list"], cwd=repo,
                           capture_output=True, text=True, timeout=60, env=keyed(), check=False)
    modules = {line.rsplit("|", 1)[-1].strip() for line in probe.stderr.splitlines() if "|" in line}
    assert probe.returncode == 0 and "litellm" not in modules and "ray" not in modules


def test_models_check_names_the_unset_variable_and_exits_2(sample_repo: Path) -> None:
    repo = configured(sample_repo)
    result = aigentflow("models", "check", "gpt", "--json", cwd=repo, env=keyed(ACME_OPENAI_KEY="sk-x-123456"))
    assert result.returncode == 2
    [gpt] = json.loads(result.stdout)["models"]
    assert "model claude (provider anthropic, a fallback of gpt)" in gpt["problem"]
    assert "ANTHROPIC_API_KEY is not set" in gpt["problem"] and "sk-x-123456" not in result.stdout
    fine = aigentflow("models", "check", "gpt", "llama", cwd=repo,
                      env=keyed(ACME_OPENAI_KEY="k", ANTHROPIC_API_KEY="k"))
    assert fine.returncode == 0, fine.stdout + fine.stderr
    assert "gpt: ok (gpt -> claude)" in fine.stdout


def test_a_run_of_a_configured_model_without_its_key_is_refused_before_ray(sample_repo: Path) -> None:
    repo = configured(sample_repo)
    started = time.monotonic()
    result = aigentflow("run", DEMO_REQUEST, "--model", "gpt", cwd=repo, env=keyed())
    assert result.returncode == 2, result.stdout + result.stderr
    assert "ACME_OPENAI_KEY is not set" in result.stderr and "export ACME_OPENAI_KEY=..." in result.stderr
    assert time.monotonic() - started < 5 and "Ray" not in result.stdout
    routed = aigentflow("run", DEMO_REQUEST, cwd=repo, env=keyed(ACME_OPENAI_KEY="k"))  # replay/demo, but rules
    assert routed.returncode == 2 and "ANTHROPIC_API_KEY" in routed.stderr, "a routed model's key is checked too"


def test_an_unknown_model_gets_a_did_you_mean(sample_repo: Path) -> None:
    repo = configured(sample_repo)
    result = aigentflow("run", DEMO_REQUEST, "--model", "claud", cwd=repo, env=keyed())
    assert result.returncode == 2 and "did you mean 'claude'?" in result.stderr, result.stderr
    broken = configured(sample_repo, '[models.extra]\nprovider = "anthropc"\nmodel = "x"\n')
    listed = aigentflow("models", "list", cwd=broken, env=keyed())
    assert listed.returncode == 2 and "did you mean 'anthropic'?" in listed.stderr, listed.stderr
