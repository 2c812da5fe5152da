"""The rollout plan's per-phase rollback procedures (``aigentflow admin rollback PHASE [--undo]``).

PHASE names the phase that is rolled back (the plan's "Phase N Rollback"):

- ``mvp`` (Phase 1, "revert to no system, fresh start"): ``mvp.py``; the whole ``.aigentflow/`` state goes
  into a tar.gz under ``.aigentflow/exports/`` and is removed; the git repository is not touched.
- ``v1.0`` (Phase 2, "disable new agents via feature flags, fallback to core agents, keep existing projects
  intact"): ``core_agents.py``; the v1 preset's additions over the MVP preset are turned off.
- ``v2.0`` (Phase 3, "disable self-evolution, stop generated agents, clear tournament state, restore v1.0
  behaviour"): contributed by ``evolution/`` (``evolution.rollout.v1``, found through the command plugins'
  ``ROLLBACK_PHASES``; aigentflow never imports it). ``v1`` ("back to v1.0 behaviour", its first name) is
  an alias of it.
- ``enterprise`` (Phase 4, "disable multi-tenant routing, fallback to single-tenant, preserve data with
  export"): ``enterprise.py``.

Every phase module has ``rollback(paths) -> dict``, ``undo(paths, export) -> dict`` and ``describe(done)``:
the rollback writes its export first (``export.py``: what it removes or disables, and the switches and flag
tables as they were), then acts, audits ``admin.rollback`` and says what it did; the undo restores from
that export and audits ``admin.rollback.undone``. A rollback run again finds nothing to change and says so.
"""

from __future__ import annotations

from aigentflow.config import flags as presets
from aigentflow.exceptions import UsageError

PHASES = ("mvp", "v1.0", "v2.0", "enterprise")
ALIASES = {"v1": "v2.0", "1": "mvp", "2": "v1.0", "3": "v2.0", "4": "enterprise"}
"""``v1``: the first name of the v2.0 rollback (named by where it goes: back to v1.0 behaviour)."""
CORE = {"mvp": "aigentflow.rollback.mvp", "v1.0": "aigentflow.rollback.core_agents",
        "enterprise": "aigentflow.rollback.enterprise"}
"""The phases aigentflow itself rolls back; ``v2.0`` needs the evolution package."""
ROLLBACK_PHASES = "ROLLBACK_PHASES"
"""What a command plugin module defines to contribute a phase: ``{"v2.0": "package.module"}``."""


def phase_of(name: str) -> str:
    """The phase ``name`` means; a UsageError naming the choices (``v2`` is refused: it could mean either)."""
    cleaned = name.strip().lower()
    if cleaned in PHASES:
        return cleaned
    if cleaned in ALIASES:
        return ALIASES[cleaned]
    if cleaned in ("v2", "v3"):
        raise UsageError(f"there is no rollback to {name!r}: PHASE names the phase rolled back. Say `v2.0` to roll "
                         "back the v2.0 phase (self-evolution) to v1.0 behaviour, or `enterprise` to roll back the "
                         "Enterprise phase (multi-tenancy) to v2.0 behaviour. Nothing changed.")
    raise UsageError(f"there is no rollback to {name!r}: PHASE is one of {', '.join(PHASES)} (the phase rolled back; "
                     "`v1` is the v2.0 rollback's first name: back to v1.0 behaviour). Nothing changed.")


def _added(preset: str, previous: str) -> tuple[str, ...]:
    """The switches ``preset`` turns on that ``previous`` leaves off."""
    now, before = presets.resolve_flags(preset, {}), presets.resolve_flags(previous, {})
    return tuple(k for k, v in now.items() if v is True and before[k] is not True)


V1_FLAGS_OFF = _added("v1", "mvp")
"""Phase 2: the new agents (developers, tester, bug fixer, reviewer, git agent, ...) and v1 features."""
V2_FLAGS_OFF = tuple(k for k in _added("v2", "v1") if k not in ("evolution.requireApproval",
                                                                 "evolution.shadowModeFirst"))
"""Phase 3: self-evolution's switches (its guards, human approval and shadow mode first, stay as they are)."""
ENTERPRISE_FLAGS_OFF = ("features.multiTenant",)
"""Phase 4 names multi-tenant routing only: GDPR, incident, audit and vendor operations stay available."""
