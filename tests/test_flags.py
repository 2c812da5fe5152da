"""The rollout plan's feature-flag presets, and resolving a preset with overrides."""

from __future__ import annotations

import re
from itertools import pairwise
from pathlib import Path

import pytest

from aigentflow.config.flags import FLAG_NAMES, PRESETS, flag_type, resolve_flags
from aigentflow.exceptions import ConfigError

SEED = Path(__file__).resolve().parents[2] / "shared" / "seed" / "000_8e4df1d31b94c934.txt"
CORE_AGENTS = {"agents.orchestrator", "agents.projectManager", "agents.architect", "agents.analyst"}
ADDED_TO_MVP = [
    "agents.gitAgent",
    "agents.mergeResolver",
    "agents.projectAnalyzer",
    "agents.complianceAgent",
]


def seed_presets() -> dict[str, dict[str, bool | int]]:
    """The presets as the plan's TypeScript blocks define them, spreads resolved."""
    presets: dict[str, dict[str, bool | int]] = {}
    for name, body in re.findall(r"const (\w+)_FLAGS = \{(.*?)\n\};", SEED.read_text(), re.DOTALL):
        flags: dict[str, bool | int] = {}
        for spread in re.findall(r"\.\.\.(\w+)_FLAGS", body):
            flags.update(presets[spread.lower()])
        for key, value in re.findall(r"'([\w.]+)':\s*(true|false|\d+)", body):
            flags[key] = int(value) if value.isdigit() else value == "true"
        presets[name.lower()] = flags
    return presets


@pytest.mark.skipif(not SEED.exists(), reason="the rollout plan is not beside the repository")
def test_presets_equal_the_rollout_plan() -> None:
    seed = seed_presets()
    assert list(seed) == ["mvp", "v1", "v2", "enterprise"]
    assert PRESETS["mvp"] == seed["mvp"] | dict.fromkeys(ADDED_TO_MVP, False)
    for later in ("v1", "v2", "enterprise"):
        assert PRESETS[later] == seed[later]


def test_mvp_enables_exactly_the_four_core_agents() -> None:
    agent_flags = {name: on for name, on in PRESETS["mvp"].items() if name.startswith("agents.")}
    assert len(agent_flags) == 14
    assert {name for name, on in agent_flags.items() if on} == CORE_AGENTS
    assert PRESETS["mvp"]["features.selfEvolution"] is False


def test_v1_enables_all_fourteen_agents() -> None:
    agent_flags = {name: on for name, on in PRESETS["v1"].items() if name.startswith("agents.")}
    assert len(agent_flags) == 14
    assert all(on is True for on in agent_flags.values())
    assert PRESETS["v1"]["features.gitWorktrees"] is True
    assert PRESETS["v1"]["features.selfEvolution"] is False


def test_v2_adds_self_evolution_with_guardrails() -> None:
    v2 = PRESETS["v2"]
    assert v2["features.selfEvolution"] is True
    assert v2["evolution.maxGeneratedAgents"] == 5
    assert v2["evolution.minTournamentMatches"] == 12
    assert v2["evolution.requireApproval"] is True
    assert v2["features.multiTenant"] is False


def test_enterprise_enables_tenancy_but_leaves_per_tenant_controls_off() -> None:
    enterprise = PRESETS["enterprise"]
    assert enterprise["features.multiTenant"] is True
    assert enterprise["platform.featureFlags"] is True
    assert enterprise["enterprise.ssoRequired"] is False


def test_each_preset_extends_the_one_before() -> None:
    names = list(PRESETS)
    for earlier, later in pairwise(names):
        assert set(PRESETS[earlier]) <= set(PRESETS[later])
    assert frozenset(PRESETS["enterprise"]) == FLAG_NAMES


def test_flag_types() -> None:
    assert flag_type("agents.analyst") is bool
    assert flag_type("evolution.maxGeneratedAgents") is int
    with pytest.raises(ConfigError, match=r"agents.analyst"):
        flag_type("agents.analist")


def test_resolve_covers_every_flag_and_applies_overrides() -> None:
    resolved = resolve_flags("mvp", {"agents.tester": True, "evolution.maxGeneratedAgents": 2})
    assert set(resolved) == FLAG_NAMES
    assert resolved["agents.tester"] is True
    assert resolved["evolution.maxGeneratedAgents"] == 2
    assert resolved["agents.analyst"] is True
    # flags the MVP block does not name are off; the guardrails keep their v2 values
    assert resolved["features.tddWorkflow"] is False
    assert resolved["evolution.minTournamentMatches"] == 12


def test_unknown_preset_lists_the_allowed_ones() -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_flags("v3", {})
    assert "'v3'" in str(caught.value)
    assert "mvp, v1, v2, enterprise" in str(caught.value)


def test_unknown_flag_suggests_the_closest_names() -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_flags("v1", {"agents.projectManger": True})
    assert "agents.projectManger" in str(caught.value)
    assert "agents.projectManager" in str(caught.value)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("agents.analyst", 1),
        ("agents.analyst", "true"),
        ("evolution.maxGeneratedAgents", True),
        ("evolution.maxGeneratedAgents", -1),
        ("evolution.minTournamentMatches", 2.5),
    ],
)
def test_wrong_value_types_are_refused(name: str, value: object) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_flags("v2", {name: value})
    assert name in str(caught.value)
    assert repr(value) in str(caught.value)
