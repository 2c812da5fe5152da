"""The four emergency switches of the rollout plan, read together (``admin emergency``, ``status``, the web UI).

- ``pause_all`` (``--pause-all`` / ``--resume-all``): every run stops at its next step boundary.
- ``disable_generated_agents`` (``--disable-generated-agents`` / ``--enable-generated-agents``): runs use the
  built-in version of a role whose chosen version was generated.
- ``disable_evolution`` (``--disable-evolution`` / ``--enable-evolution``): no mining, generation, tournaments
  or canaries (``aigentflow.roles.evolution_switch``: the store control or its mirror file).
- ``single_tenant_mode`` (``--single-tenant-mode`` / ``--multi-tenant-mode``): multi-tenant routing off
  (``aigentflow.tenants.mode``).

Each is persisted in the run store's controls (the operator tenant's rows) and stays on until its opposite
option lifts it. Reading them is a few SQLite reads and one ``stat``: ``status`` (which must start fast)
imports this module, so it imports nothing beyond the standard library and the key names.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

PAUSE_ALL = "emergency.pause_all"
DISABLE_GENERATED = "emergency.disable_generated_agents"
DISABLE_EVOLUTION = "emergency.disable_evolution"
SINGLE_TENANT_MODE = "emergency.single_tenant_mode"
EVOLUTION_FILE = Path("evolution") / "disabled.json"
"""Under the state dir: the mirror of ``DISABLE_EVOLUTION`` that canary routing reads."""
OPERATOR_TENANT = "default"

SWITCHES: dict[str, tuple[str, str, str]] = {
    "pause_all": ("pause-all", "--resume-all", "no run moves past its next step boundary"),
    "disable_generated_agents": ("disable-generated-agents", "--enable-generated-agents",
                                 "runs use the built-in versions instead of generated ones"),
    "disable_evolution": ("disable-evolution", "--enable-evolution",
                          "no mining, generation, tournaments or canaries"),
    "single_tenant_mode": ("single-tenant-mode", "--multi-tenant-mode",
                           "no multi-tenant routing (new runs go to the operator tenant, the API serves only it)"),
}
"""key -> (the switch's name as the CLI spells it, the option that lifts it, what it does while on)."""


def read(store: Any, state_dir: Path) -> dict[str, Any]:
    """Every switch's state: ``{key: bool}`` for the four, and ``evolution_disabled_reason`` (or None)."""
    evolution = store.get_control(DISABLE_EVOLUTION, False, tenant_id=OPERATOR_TENANT)
    reason = None
    if evolution:
        evolution = evolution if isinstance(evolution, dict) else {}
        reason = f"disabled {evolution.get('at', '')}: {evolution.get('reason') or 'no reason given'}"
    elif (Path(state_dir) / EVOLUTION_FILE).exists():
        reason = _file_reason(Path(state_dir) / EVOLUTION_FILE)
    return {
        "pause_all": bool(store.get_control(PAUSE_ALL, False, tenant_id=OPERATOR_TENANT)),
        "disable_generated_agents": bool(store.get_control(DISABLE_GENERATED, False, tenant_id=OPERATOR_TENANT)),
        "disable_evolution": reason is not None,
        "evolution_disabled_reason": reason,
        "single_tenant_mode": bool(store.get_control(SINGLE_TENANT_MODE, False, tenant_id=OPERATOR_TENANT)),
    }


def _file_reason(path: Path) -> str:
    import json

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return f"{path} exists (unreadable)"
    data = data if isinstance(data, dict) else {}
    return f"disabled {data.get('at', '')}: {data.get('reason') or 'no reason given'}"


def describe(state: dict[str, Any], only_on: bool = False) -> list[str]:
    """One line per switch ("pause-all is off", "single-tenant-mode is ON: ... (lift: ...)"); ``only_on``:
    only those that are on."""
    lines = []
    for key, (name, lift, effect) in SWITCHES.items():
        if not state.get(key):
            if not only_on:
                lines.append(f"{name} is off")
            continue
        why = f" ({state['evolution_disabled_reason']})" if key == "disable_evolution" else ""
        lines.append(f"{name} is ON{why}: {effect}; lift it with `aigentflow admin emergency {lift}`")
    return lines
