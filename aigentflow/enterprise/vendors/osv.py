"""Vulnerabilities from OSV records: an offline database of OSV JSON files, or api.osv.dev.

The offline database is a directory of OSV records (``<id>.json``, or JSON files holding a list of
records) -- the shipped ``snapshot/`` is a small hand-written test snapshot, not a real feed; point
``--db`` at an export of osv.dev (``gs://osv-vulnerabilities/<ecosystem>/all.zip``, unzipped) for
real scans. Online, ``/v1/querybatch`` names the advisories of each package version and
``/v1/vulns/<id>`` gives each record, which is then matched exactly as an offline one.
"""

from __future__ import annotations

import json
import math
import os
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from aigentflow.enterprise.vendors.inventory import PYPI, Package, normalize
from aigentflow.enterprise.vendors.versions import is_affected, parse, parser_for
from aigentflow.exceptions import UsageError

SNAPSHOT = Path(__file__).with_name("snapshot")
OSV_API = "https://api.osv.dev/v1"
BATCH_LIMIT = 1000
"""Package versions per ``querybatch`` request (the API's maximum)."""
SEVERITIES = ("unknown", "low", "medium", "high", "critical")


class Unreachable(UsageError):
    """api.osv.dev could not be reached (no network, a proxy, a timeout)."""


@dataclass
class Finding:
    id: str
    ecosystem: str
    package: str
    installed: str
    fixed: str | None
    severity: str
    summary: str
    aliases: list[str]
    source: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _key(ecosystem: str, name: str) -> tuple[str, str]:
    return ecosystem, normalize(name) if ecosystem == PYPI else name


class Database:
    """OSV records indexed by the (ecosystem, package) they affect."""

    def __init__(self, records: Iterable[dict[str, Any]], source: str) -> None:
        self.source = source
        self.records: list[dict[str, Any]] = []
        self.by_package: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for record in records:
            if record.get("withdrawn"):
                continue
            self.records.append(record)
            for affected in record.get("affected") or []:
                package = affected.get("package") or {}
                if package.get("ecosystem") and package.get("name"):
                    self.by_package.setdefault(_key(package["ecosystem"], package["name"]), []).append(record)

    @classmethod
    def load(cls, path: Path) -> Database:
        """Every OSV record in the JSON files under ``path`` (a directory or one file)."""
        path = Path(path)
        if not path.exists():
            raise UsageError(f"no vulnerability database at {path}: pass --db a directory of OSV JSON files.")
        files = sorted(path.rglob("*.json")) if path.is_dir() else [path]
        records: list[dict[str, Any]] = []
        for file in files:
            try:
                data = json.loads(file.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
                raise UsageError(f"{file} is not an OSV JSON file ({exc}); fix or remove it.") from None
            for record in data if isinstance(data, list) else [data]:
                if not isinstance(record, dict) or "id" not in record or "affected" not in record:
                    raise UsageError(f"{file} holds something that is not an OSV record (no id or affected).")
                records.append(record)
        if not records:
            raise UsageError(f"{path} holds no OSV records (*.json).")
        return cls(records, str(path))

    def findings(self, packages: Iterable[Package]) -> list[Finding]:
        """The advisories that affect each package version."""
        found: list[Finding] = []
        for package in packages:
            for record in self.by_package.get(_key(package.ecosystem, package.name), []):
                finding = match(record, package)
                if finding is not None:
                    found.append(finding)
        return sorted(found, key=lambda f: (-SEVERITIES.index(f.severity), f.package, f.id))


def match(record: dict[str, Any], package: Package) -> Finding | None:
    """A finding when ``record`` affects this package version, else None."""
    for affected in record.get("affected") or []:
        named = affected.get("package") or {}
        if _key(named.get("ecosystem", ""), named.get("name", "")) != _key(package.ecosystem, package.name):
            continue
        if is_affected(package.version, affected):
            return Finding(
                id=record["id"], ecosystem=package.ecosystem, package=package.name, installed=package.version,
                fixed=_fix_for(package, affected), severity=severity_of(record, affected),
                summary=str(record.get("summary") or record.get("details") or "")[:200],
                aliases=list(record.get("aliases") or []), source=package.source,
            )
    return None


def _fix_for(package: Package, affected: dict[str, Any]) -> str | None:
    """The lowest ``fixed`` version above the installed one."""
    parse_version = parser_for(package.ecosystem)
    installed = parse(package.version, parse_version)
    fixes = []
    for one in affected.get("ranges") or []:
        for event in one.get("events") or []:
            fixed = parse(event.get("fixed", ""), parse_version) if "fixed" in event else None
            if fixed is not None and (installed is None or fixed > installed):
                fixes.append((fixed, event["fixed"]))
    return min(fixes)[1] if fixes else None


# -- severity --------------------------------------------------------------------------------------

_CVSS3 = {
    "AV": {"N": 0.85, "A": 0.62, "L": 0.55, "P": 0.2}, "AC": {"L": 0.77, "H": 0.44},
    "UI": {"N": 0.85, "R": 0.62}, "C": {"H": 0.56, "L": 0.22, "N": 0.0},
}


def _roundup(value: float) -> float:
    """CVSS 3.1's Roundup: the smallest one-decimal number not below ``value``."""
    scaled = round(value * 100000)
    return scaled / 100000.0 if scaled % 10000 == 0 else (math.floor(scaled / 10000) + 1) / 10.0


def cvss3_score(vector: str) -> float | None:
    """The CVSS 3.x base score of a vector (``CVSS:3.1/AV:N/AC:L/...``), None if it is not one."""
    try:
        metrics = dict(part.split(":", 1) for part in vector.split("/")[1:])
        changed = metrics["S"] == "C"
        privileges = {"N": 0.85, "L": 0.68 if changed else 0.62, "H": 0.5 if changed else 0.27}[metrics["PR"]]
        impact_base = 1 - math.prod(1 - _CVSS3["C"][metrics[m]] for m in ("C", "I", "A"))
        exploitability = 8.22 * _CVSS3["AV"][metrics["AV"]] * _CVSS3["AC"][metrics["AC"]] * privileges \
            * _CVSS3["UI"][metrics["UI"]]
    except (KeyError, ValueError):
        return None
    if not vector.startswith("CVSS:3"):
        return None
    impact = 7.52 * (impact_base - 0.029) - 3.25 * (impact_base - 0.02) ** 15 if changed else 6.42 * impact_base
    if impact <= 0:
        return 0.0
    return _roundup(min(1.08 * (impact + exploitability) if changed else impact + exploitability, 10))


def rating(score: float) -> str:
    """CVSS's qualitative rating of a base score."""
    return "critical" if score >= 9 else "high" if score >= 7 else "medium" if score >= 4 else \
        "low" if score > 0 else "unknown"


def severity_of(record: dict[str, Any], affected: dict[str, Any] | None = None) -> str:
    """The record's severity: ``database_specific.severity`` (GitHub's advisories), else the rating of
    its CVSS v3 vector, else "unknown"."""
    for holder in (affected or {}, record):
        named = str((holder.get("database_specific") or {}).get("severity", "")).lower()
        if named in SEVERITIES:
            return named
        if named == "moderate":
            return "medium"
    for holder in (affected or {}, record):
        for entry in holder.get("severity") or []:
            if str(entry.get("type", "")).startswith("CVSS_V3") and (score := cvss3_score(str(entry.get("score")))):
                return rating(score)
    return "unknown"


def at_least(severity: str, threshold: str) -> bool:
    return SEVERITIES.index(severity) >= SEVERITIES.index(threshold)


# -- online ----------------------------------------------------------------------------------------


def _post(url: str, body: dict[str, Any], timeout: float) -> dict[str, Any]:
    request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"})
    return _open(request, timeout)


def _open(request: urllib.request.Request | str, timeout: float) -> dict[str, Any]:
    url = request if isinstance(request, str) else request.full_url
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise Unreachable(f"{url} answered HTTP {exc.code}; scan offline (without --online) or retry later.") \
            from None
    except (urllib.error.URLError, OSError, json.JSONDecodeError) as exc:
        reason = getattr(exc, "reason", exc)
        raise Unreachable(f"cannot reach {url} ({reason}); scan offline without --online, against the shipped "
                          "snapshot or a database exported from osv.dev (--db).") from None


def query_online(packages: list[Package], api: str | None = None, timeout: float = 20.0) -> Database:
    """The OSV records api.osv.dev (or ``$AIGENTFLOW_OSV_API``: a mirror) has for these package versions
    (``querybatch``, then each record)."""
    api = (api or os.environ.get("AIGENTFLOW_OSV_API") or OSV_API).rstrip("/")
    ids: set[str] = set()
    for start in range(0, len(packages), BATCH_LIMIT):
        batch = packages[start:start + BATCH_LIMIT]
        queries = [{"package": {"name": p.name, "ecosystem": p.ecosystem}, "version": p.version} for p in batch]
        answer = _post(f"{api}/querybatch", {"queries": queries}, timeout)
        for result in answer.get("results") or []:
            ids.update(vuln["id"] for vuln in result.get("vulns") or [] if "id" in vuln)
    records = [_open(f"{api}/vulns/{vuln_id}", timeout) for vuln_id in sorted(ids)]
    return Database(records, api)
