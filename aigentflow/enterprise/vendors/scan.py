"""The scans the ``deps`` commands run: vulnerabilities of a project's pins or of aigentflow's own
installed tree, and the licenses of the installed tree against a policy."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aigentflow.enterprise.vendors.inventory import (
    PYPI,
    Distribution,
    Package,
    closure,
    environment,
    project_packages,
)
from aigentflow.enterprise.vendors.licenses import UNKNOWN, Policy, license_of
from aigentflow.enterprise.vendors.osv import SNAPSHOT, Database, Finding, query_online

ROOT = "aigentflow"


@dataclass
class ScanResult:
    target: str
    database: str
    packages: list[Package]
    findings: list[Finding]
    unpinned: list[tuple[str, str]] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "target": self.target, "database": self.database, "scanned": len(self.packages),
            "sources": self.sources, "findings": [f.to_dict() for f in self.findings],
            "unpinned": [{"requirement": r, "source": s} for r, s in self.unpinned],
        }


def self_packages(dists: dict[str, Distribution], all_installed: bool = False) -> list[Package]:
    """aigentflow's installed tree (what it requires, transitively), or every installed distribution."""
    names = sorted(dists) if all_installed or ROOT not in dists else sorted(closure(dists, ROOT))
    return [Package(PYPI, name, dists[name].version, "installed") for name in names]


def scan(packages: list[Package], *, target: str, db: Path | None, online: bool) -> ScanResult:
    database = query_online(packages) if online else Database.load(db or SNAPSHOT)
    return ScanResult(target, database.source, packages, database.findings(packages))


def scan_project(root: Path, *, db: Path | None, online: bool) -> ScanResult:
    inventory = project_packages(root)
    result = scan(inventory.packages, target=str(root), db=db, online=online)
    result.unpinned, result.sources = inventory.unpinned, inventory.sources
    return result


def scan_self(*, db: Path | None, online: bool, all_installed: bool = False) -> ScanResult:
    packages = self_packages(environment(), all_installed)
    return scan(packages, target="installed environment" if all_installed else "aigentflow's installed tree",
                db=db, online=online)


def license_report(policy: Policy, dists: dict[str, Distribution] | None = None) -> dict[str, Any]:
    """Each installed distribution's license and whether ``policy`` allows it."""
    dists = environment() if dists is None else dists
    required = closure(dists, ROOT) if ROOT in dists else {}
    rows = []
    for key, dist in sorted(dists.items()):
        info = license_of(dist)
        unknown = info.expression == UNKNOWN
        allowed = (not policy.fail_unknown) if unknown else policy.allows(info.expression)
        rows.append({"name": key, "version": dist.version, "license": info.expression, "source": info.source,
                     "allowed": allowed, "unknown": unknown, "required_by_aigentflow": key in required})
    return {
        "policy": {"deny": policy.deny, "allow": policy.allow, "fail_unknown": policy.fail_unknown},
        "distributions": rows,
        "violations": [r for r in rows if not r["allowed"]],
        "unknown": [r for r in rows if r["unknown"]],
    }
