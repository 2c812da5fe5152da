"""The Compliance Agent's checks (basic, deterministic): what a change adds must not carry secrets or
forbidden patterns, and the project's dependencies must have licenses the policy allows.

- Secrets: every added line of the diff through the same redactor that guards traces and prompts
  (provider key shapes, tokens, the environment's secret values).
- Forbidden patterns: ``compliance.forbidden_patterns`` (regular expressions) on added lines.
- Licenses: the dependencies declared in ``pyproject.toml`` (looked up in the installed
  distributions' metadata) and ``package.json`` (``node_modules/<name>/package.json``) against
  ``compliance.denied_licenses``; an unknown license blocks only with ``compliance.block_unknown_licenses``.

A blocking finding stops the merge with the findings as evidence. No Ray or model imports here.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aigentflow.config.settings import ComplianceSettings

_REQUIREMENT_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


def added_lines(diff: str) -> list[tuple[str, int, str]]:
    """(path, line number, text) of every line a unified diff adds."""
    added, path, number = [], None, 0
    for line in diff.splitlines():
        if line.startswith("+++ "):
            path = line[6:] if line.startswith("+++ b/") else None
        elif line.startswith("@@"):
            match = re.match(r"^@@ -\d+(?:,\d+)? \+(\d+)", line)
            number = int(match.group(1)) if match else 0
        elif path and line.startswith("+"):
            added.append((path, number, line[1:]))
            number += 1
        elif path and not line.startswith("-"):
            number += 1
    return added


def declared_dependencies(root: Path) -> list[tuple[str, str]]:
    """(ecosystem, name) of the dependencies the project declares."""
    deps: list[tuple[str, str]] = []
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        try:
            data = tomllib.loads(pyproject.read_text())
        except tomllib.TOMLDecodeError:
            data = {}
        for requirement in data.get("project", {}).get("dependencies", []):
            match = _REQUIREMENT_NAME.match(requirement)
            if match:
                deps.append(("python", match.group(1)))
    package = root / "package.json"
    if package.is_file():
        try:
            data = json.loads(package.read_text())
        except json.JSONDecodeError:
            data = {}
        deps += [("javascript", name) for name in sorted(data.get("dependencies", {}))]
    return deps


def license_of(ecosystem: str, name: str, installed_root: Path) -> str | None:
    if ecosystem == "python":
        from importlib import metadata

        try:
            meta = metadata.metadata(name)
        except metadata.PackageNotFoundError:
            return None
        expression = meta.get("License-Expression") or meta.get("License")
        if expression and len(expression) < 100:
            return expression.strip()
        classifiers = [c.rsplit("::", 1)[-1].strip() for c in meta.get_all("Classifier") or []
                       if c.startswith("License ::")]
        return classifiers[0] if classifiers else None
    manifest = installed_root / "node_modules" / name / "package.json"
    try:
        value = json.loads(manifest.read_text()).get("license")
    except (OSError, json.JSONDecodeError):
        return None
    return value if isinstance(value, str) else None


def _denied(license_text: str, denied: list[str]) -> str | None:
    normalized = license_text.upper().replace(" ", "-")
    for item in denied:
        token = item.upper().replace(" ", "-")
        if re.search(rf"(?<![A-Z]){re.escape(token)}(?![0-9.])", normalized):
            return item
    return None


def check(worktree: Path, installed_root: Path, diff: str, settings: ComplianceSettings,
          redactor: Any) -> dict[str, Any]:
    """The findings on a change (``diff``, from ``worktree``); ``blocking`` when any finding blocks."""
    findings: list[dict[str, Any]] = []
    patterns = [(p, re.compile(p)) for p in settings.forbidden_patterns]
    for path, number, text in added_lines(diff):
        if redactor.redact_text(text) != text:
            findings.append({"kind": "secret", "path": path, "line": number, "blocking": True,
                             "detail": "the change adds what looks like a secret (key, token or password)"})
        for source, pattern in patterns:
            if pattern.search(text):
                findings.append({"kind": "forbidden_pattern", "path": path, "line": number, "blocking": True,
                                 "detail": f"matches the forbidden pattern {source!r} (compliance.forbidden_patterns)"})
    for ecosystem, name in declared_dependencies(worktree):
        found = license_of(ecosystem, name, installed_root)
        if found is None:
            findings.append({"kind": "license", "path": name, "line": 0,
                             "blocking": settings.block_unknown_licenses,
                             "detail": f"{ecosystem} dependency {name}: license unknown (not installed here?)"})
        elif (rule := _denied(found, settings.denied_licenses)):
            findings.append({"kind": "license", "path": name, "line": 0, "blocking": True,
                             "detail": f"{ecosystem} dependency {name} is {found}, denied by "
                                       "compliance.denied_licenses "
                                       f"({rule})"})
    return {"findings": findings, "blocking": any(f["blocking"] for f in findings)}
