"""Phase 2 (v1.0) rollback: disable the new agents through their feature flags, fall back to the core agents,
keep existing projects intact.

The flags the v1 preset turns on over the MVP preset (``V1_FLAGS_OFF``: the UI designer, the developers,
tester, bug fixer, reviewer, git agent, merge resolver, project analyzer, compliance agent, and worktrees,
TDD, coverage, the fix loop, review, CI/CD and releases) are turned off in the project's flags file, each
change audited. A new run then has only the core agents' states (ANALYZING, PLANNING, ARCHITECTING) and
completes after the architecture, as the MVP did. Nothing is deleted: runs, their outputs, branches,
worktrees and traces stay; a run recorded before keeps the flags it was recorded with (a resume replays
them). The export holds every changed flag's table and config value as they were; the undo puts them back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aigentflow.rollback import V1_FLAGS_OFF
from aigentflow.rollback import export as exports

PHASE = "v1.0"
REASON = "admin rollback v1.0"


def rollback(paths: Any) -> dict[str, Any]:
    from aigentflow.store.rows import now_iso

    changing = exports.flags_to_turn_off(paths, V1_FLAGS_OFF)
    export = None
    if changing:  # written before anything changes
        export = exports.new_export(paths, PHASE)
        exports.write(export, {"phase": PHASE, "exported_at": now_iso(), "flags": changing, "switches_on": []})
    left = exports.flags_off(paths, changing, V1_FLAGS_OFF, REASON)
    done = {"phase": PHASE, "export": str(export) if export else None, "flags_off": sorted(changing),
            "flags_left_on": left, "core_agents": ["analyst", "project_manager", "architect"],
            "changed": bool(changing)}
    exports.audit(paths, "admin.rollback", done)
    return done


def undo(paths: Any, path: Path) -> dict[str, Any]:

    data = exports.read(path, PHASE)
    restored = exports.flags_restore(paths, data.get("flags") or {}, REASON)
    exports.mark_undone(path, data)
    done = {"phase": PHASE, "undo": True, "export": str(path), "flags_restored": restored}
    exports.audit(paths, "admin.rollback.undone", done)
    return done


def describe(done: dict[str, Any]) -> list[str]:
    if done.get("undo"):
        return [f"restored from {done['export']}: " + (", ".join(done["flags_restored"]) or "no flag changed"),
                "the v1.0 agents run again as their flags say"]
    lines = [f"exported the flags as they were to {done['export']}"] if done["export"] else []
    lines += exports.flag_lines(dict.fromkeys(done["flags_off"]), done["flags_left_on"])
    lines.append("new runs fall back to the core agents (analyst, project manager, architect); existing runs, "
                 "outputs, branches and worktrees are kept")
    if not done["changed"]:
        lines.append("already rolled back to the core agents: nothing changed")
    else:
        lines.append(f"`aigentflow admin rollback {PHASE} --undo` restores them")
    return lines
