"""Generated candidates on disk, and the decisions about them. No Ray, litellm or DSPy.

A candidate ``<role>@<version>`` (version: the incumbent's plus ``+gen.N``) is three files:

- ``.aigentflow/evolution/candidates/<role>@<version>.json``: the evidence (finding, cases, the optimizer's
  candidates and scores, the chosen one, the DSPy program's state as JSON, the validation, the decisions);
- ``.aigentflow/agents/<role>/<version>.md``: its instructions (prompt layer ``agents/<role>/<version>.md``);
- ``.aigentflow/agents/<role>/<version>.json``: its spec, ``origin = "generated"``, ``approval`` pending,
  approved or rejected, ``tenant``. Written last: the registry sees a version only once everything else is there.

A candidate belongs to the tenant of the finding it came from (``tenant`` in its spec, ``tenant_id`` in its
evidence); one written before candidates had a tenant is ``default``'s (the only tenant there was).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from packaging.version import Version

from aigentflow.exceptions import UsageError
from aigentflow.models.cassette import write_json_atomic

GEN = re.compile(r"\+gen\.(\d+)$")
ALIVE = ("pending", "approved")


def evidence_dir(paths: Any) -> Path:
    return paths.state_dir / "evolution" / "candidates"


def evidence_path(paths: Any, key: str) -> Path:
    return evidence_dir(paths) / f"{key}.json"


def next_version(paths: Any, role: str, incumbent_version: str) -> str:
    base = Version(incumbent_version).public
    taken = [int(m.group(1)) for p in (paths.agents_dir / role).glob("*.json") if (m := GEN.search(p.stem))]
    taken += [int(m.group(1)) for p in evidence_dir(paths).glob(f"{role}@*.json") if (m := GEN.search(p.stem))]
    return f"{base}+gen.{max(taken, default=0) + 1}"


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object from ``path``; None when it is missing, unreadable or not an object."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def tenant_of(spec: dict[str, Any], evidence: dict[str, Any]) -> str:
    """The candidate's tenant (see the module docstring)."""
    return str(spec.get("tenant") or evidence.get("tenant_id") or "default")


def list_candidates(paths: Any) -> list[dict[str, Any]]:
    """Every generated version's spec file (origin generated), with its key, tenant and evidence summary, by
    key."""
    found = []
    for spec_file in sorted(paths.agents_dir.glob("*/*.json")) if paths.agents_dir.is_dir() else ():
        data = read_json(spec_file)
        if data is None or data.get("origin") != "generated":
            continue
        key = f"{spec_file.parent.name}@{spec_file.stem}"
        evidence = read_json(evidence_path(paths, key)) or {}
        found.append({"id": key, "tenant_id": tenant_of(data, evidence), "role": spec_file.parent.name,
                      "version": spec_file.stem,
                      "approval": data.get("approval"), "file": str(spec_file),
                      "finding": (evidence.get("finding") or {}).get("id"),
                      "score": (evidence.get("chosen") or {}).get("score"),
                      "summary": (evidence.get("chosen") or {}).get("summary", ""),
                      "created_at": evidence.get("created_at", "")})
    return found


def alive(paths: Any) -> list[dict[str, Any]]:
    return [c for c in list_candidates(paths) if c["approval"] in ALIVE]


def split_key(key: str) -> tuple[str, str]:
    role, sep, version = key.partition("@")
    if not sep or not role or not version:
        raise UsageError(f"{key!r} is not a candidate id; ids are role@version (`aigentflow evolve list`)")
    return role, version


def spec_file(paths: Any, key: str) -> Path:
    role, version = split_key(key)
    path = paths.agents_dir / role / f"{version}.json"
    data = read_json(path) if path.is_file() else None
    if path.is_file() and data is None and evidence_path(paths, key).is_file():
        raise UsageError(f"the spec file of {key} ({path}) is not a JSON object any more (edited by hand?); "
                         "nothing was changed. Restore it, or delete it and its .md to drop the candidate.")
    if data is None or data.get("origin") != "generated":
        known = ", ".join(c["id"] for c in list_candidates(paths)) or "none"
        raise UsageError(f"there is no generated candidate {key!r}; candidates are: {known}")
    return path


def write_candidate(paths: Any, role: str, version: str, spec: dict[str, Any], instructions: str,
                    evidence: dict[str, Any]) -> Path:
    """Write the evidence, the prompt layer, then the spec file (each atomically); on any failure remove
    what was written, so that the registry never sees half a candidate."""
    key = f"{role}@{version}"
    layer = paths.agents_dir / role / f"{version}.md"
    target = paths.agents_dir / role / f"{version}.json"
    written: list[Path] = []
    try:
        write_json_atomic(evidence_path(paths, key), evidence)
        written.append(evidence_path(paths, key))
        layer.parent.mkdir(parents=True, exist_ok=True)
        tmp = layer.with_name(f".{layer.name}.tmp")
        tmp.write_text(instructions, encoding="utf-8")
        tmp.replace(layer)
        written.append(layer)
        write_json_atomic(target, spec)
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return target


def set_approval(paths: Any, key: str, decision: str, note: str = "") -> dict[str, Any]:
    """Record ``decision`` (approved or rejected) in the spec file and the evidence; returns the spec."""
    path = spec_file(paths, key)
    spec = read_json(path) or {}
    spec["approval"] = decision
    evidence = read_json(evidence_path(paths, key)) or {}
    from evolution.patterns.store import now_iso

    evidence.setdefault("decisions", []).append({"decision": decision, "at": now_iso(), "note": note})
    write_json_atomic(evidence_path(paths, key), evidence)
    write_json_atomic(path, spec)
    return spec
