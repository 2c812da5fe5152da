"""The rollout plan's feature-flag presets (MVP, v1, v2, Enterprise) as data, and their resolution.

Each preset extends the one before it, exactly as the plan's ``...MVP_FLAGS`` spreads do. A flag a
preset does not name (e.g. ``features.tddWorkflow`` in MVP) resolves to off: ``False`` for switches;
the two integer guardrails keep their v2 values so that enabling evolution by hand stays guarded.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping

from aigentflow.exceptions import ConfigError

MVP_FLAGS: dict[str, bool | int] = {
    "core.stateMachine": True,
    "core.persistence": True,
    "core.basicHooks": True,
    "agents.orchestrator": True,
    "agents.projectManager": True,
    "agents.architect": True,
    "agents.analyst": True,
    "agents.uiDesigner": False,
    "agents.frontendDev": False,
    "agents.backendDev": False,
    "agents.tester": False,
    "agents.bugFixer": False,
    "agents.reviewer": False,
    # Not in the plan's MVP block; named here so that every agent has a flag in every preset.
    "agents.gitAgent": False,
    "agents.mergeResolver": False,
    "agents.projectAnalyzer": False,
    "agents.complianceAgent": False,
    "features.gitWorktrees": False,
    "features.selfEvolution": False,
    "features.multiTenant": False,
    "features.complianceDashboard": False,
}

V1_FLAGS: dict[str, bool | int] = {
    **MVP_FLAGS,
    "agents.uiDesigner": True,
    "agents.frontendDev": True,
    "agents.backendDev": True,
    "agents.tester": True,
    "agents.bugFixer": True,
    "agents.reviewer": True,
    "agents.gitAgent": True,
    "agents.mergeResolver": True,
    "agents.projectAnalyzer": True,
    "agents.complianceAgent": True,
    "features.gitWorktrees": True,
    "features.parallelDevelopment": True,
    "features.conflictDetection": True,
    "features.tddWorkflow": True,
    "features.coverageTracking": True,
    "features.bugFixLoop": True,
    "features.codeReview": True,
    "features.cicdIntegration": True,
    "features.releaseWorkflow": True,
    "features.selfEvolution": False,
    "features.multiTenant": False,
    "features.complianceDashboard": False,
}

V2_FLAGS: dict[str, bool | int] = {
    **V1_FLAGS,
    "features.selfEvolution": True,
    "evolution.tracing": True,
    "evolution.patternDetection": True,
    "evolution.agentGeneration": True,
    "evolution.tournament": True,
    "evolution.requireApproval": True,
    "evolution.shadowModeFirst": True,
    "evolution.maxGeneratedAgents": 5,
    "evolution.minTournamentMatches": 12,
    "features.multiTenant": False,
    "features.complianceDashboard": False,
}

ENTERPRISE_FLAGS: dict[str, bool | int] = {
    **V2_FLAGS,
    "features.multiTenant": True,
    "features.complianceDashboard": True,
    "enterprise.incidentResponse": True,
    "enterprise.gdprOperations": True,
    "enterprise.vendorSecurity": True,
    "enterprise.auditReports": True,
    "platform.modelAbstraction": True,
    "platform.multiProvider": True,
    "platform.featureFlags": True,
    "platform.genUIOutput": True,
    "enterprise.ssoRequired": False,
    "enterprise.ipWhitelist": False,
    "enterprise.dataResidency": False,
    "enterprise.customRetention": False,
}

PRESETS: dict[str, dict[str, bool | int]] = {
    "mvp": MVP_FLAGS,
    "v1": V1_FLAGS,
    "v2": V2_FLAGS,
    "enterprise": ENTERPRISE_FLAGS,
}

FLAG_NAMES: frozenset[str] = frozenset(name for flags in PRESETS.values() for name in flags)

_UNNAMED_INT_FLAGS: dict[str, int] = {
    "evolution.maxGeneratedAgents": 5,
    "evolution.minTournamentMatches": 12,
}


def flag_type(name: str) -> type:
    """``bool`` for a switch, ``int`` for a numeric guardrail; ConfigError for an unknown name."""
    _check_known(name)
    return int if name in _UNNAMED_INT_FLAGS else bool


def default_value(name: str) -> bool | int:
    """What a flag resolves to in a preset that does not name it."""
    return _UNNAMED_INT_FLAGS.get(name, False)


def resolve_flags(preset: str, overrides: Mapping[str, object]) -> dict[str, bool | int]:
    """Every flag's value, sorted by name: the preset's, then ``overrides`` (type-checked)."""
    if preset not in PRESETS:
        raise ConfigError(
            f"unknown feature-flag preset {preset!r}; allowed presets: {', '.join(PRESETS)}"
        )
    resolved: dict[str, bool | int] = {name: default_value(name) for name in sorted(FLAG_NAMES)}
    resolved.update(PRESETS[preset])
    for name, value in overrides.items():
        resolved[name] = check_flag_value(name, value)
    return resolved


def check_flag_value(name: str, value: object) -> bool | int:
    """``value`` if it fits flag ``name``; ConfigError naming the flag, the value and what fits."""
    expected = flag_type(name)
    if expected is bool and isinstance(value, bool):
        return value
    if expected is int and isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    allowed = "true or false" if expected is bool else "a whole number >= 0"
    raise ConfigError(f"feature flag {name!r} cannot be {value!r}: allowed is {allowed}")


def _check_known(name: str) -> None:
    if name in FLAG_NAMES:
        return
    close = difflib.get_close_matches(name, sorted(FLAG_NAMES), n=3, cutoff=0.6)
    hint = f"; did you mean {', '.join(close)}?" if close else "; see `aigentflow config list`"
    raise ConfigError(f"unknown feature flag {name!r}{hint}")
