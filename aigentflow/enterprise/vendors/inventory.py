"""What is installed, and what a project pins: the packages scans, license checks and the SBOM read.

- ``environment()``: every distribution installed where aigentflow runs (``importlib.metadata``),
  with the installed distributions each one requires (markers evaluated, extras followed), so the
  tree below any of them (``closure``) is known without a resolver.
- ``project_packages(root)``: the exact versions a project pins, from its lockfiles (``uv.lock``,
  ``poetry.lock``, ``pdm.lock``, ``Pipfile.lock``, ``package-lock.json``), its requirements files and
  the ``==`` pins of ``pyproject.toml``; a requirement without an exact version is listed as unpinned.
"""

from __future__ import annotations

import json
import re
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from email.message import Message
from email.parser import HeaderParser
from importlib import metadata
from pathlib import Path
from typing import Any

from packaging.markers import default_environment
from packaging.requirements import InvalidRequirement, Requirement

from aigentflow.exceptions import UsageError

PYPI, NPM = "PyPI", "npm"
_EXTRA = re.compile(r"""extra\s*==\s*['"]([^'"]+)['"]""")


def normalize(name: str) -> str:
    """A PyPI name as PEP 503 compares it (``Foo_Bar`` -> ``foo-bar``)."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass
class Distribution:
    """One installed distribution and what its metadata says."""

    name: str
    version: str
    requires: dict[str, list[tuple[str, frozenset[str]]]] = field(default_factory=dict)
    """Extra ("" for none) -> the installed distributions it then requires, with the extras asked of them."""
    license_expression: str | None = None
    license: str | None = None
    classifiers: list[str] = field(default_factory=list)
    summary: str = ""
    homepage: str = ""

    @property
    def key(self) -> str:
        return normalize(self.name)

    @property
    def purl(self) -> str:
        return f"pkg:pypi/{self.key}@{self.version}"


def _headers(dist: metadata.Distribution) -> Message | None:
    """A distribution's core metadata headers, its description (often most of the file) left unparsed:
    ``Distribution.metadata`` parses the whole file, each time it is asked for."""
    text = dist.read_text("METADATA") or dist.read_text("PKG-INFO")
    return HeaderParser().parsestr(text) if text else None


def _requirements(meta: Message, installed: set[str]) -> dict[str, list[tuple[str, frozenset[str]]]]:
    base = default_environment()
    extras = {normalize(e) for e in meta.get_all("Provides-Extra") or []}
    requires: dict[str, list[tuple[str, frozenset[str]]]] = {}
    for text in meta.get_all("Requires-Dist") or []:
        try:
            requirement = Requirement(text)
        except InvalidRequirement:
            continue
        name = normalize(requirement.name)
        if name not in installed:
            continue
        wanted = (name, frozenset(map(normalize, requirement.extras)))
        marker = requirement.marker
        if marker is None or marker.evaluate({**base, "extra": ""}):  # type: ignore[dict-item]
            requires.setdefault("", []).append(wanted)
            continue
        # Only the extras the marker names can make it true (evaluating each of ray's 14 extras costs).
        for extra in {normalize(e) for e in _EXTRA.findall(str(marker))} & extras:
            if marker.evaluate({**base, "extra": extra}):  # type: ignore[dict-item]
                requires.setdefault(extra, []).append(wanted)
    return requires


def environment(paths: list[str] | None = None) -> dict[str, Distribution]:
    """Every distribution installed on ``paths`` (default ``sys.path``), by normalized name; where one is
    installed twice the first on the path wins, as ``import`` would have it."""
    found: dict[str, Message] = {}
    for dist in metadata.distributions(**({"path": paths} if paths is not None else {})):
        meta = _headers(dist)
        name = meta.get("Name") if meta is not None else None
        if meta is not None and name and normalize(name) not in found:
            found[normalize(name)] = meta
    installed = set(found)
    result: dict[str, Distribution] = {}
    for key, meta in found.items():
        urls = [u.split(",", 1)[-1].strip() for u in meta.get_all("Project-URL") or []]
        result[key] = Distribution(
            name=meta["Name"], version=meta.get("Version") or "", requires=_requirements(meta, installed),
            license_expression=meta.get("License-Expression"), license=meta.get("License"),
            classifiers=[c for c in meta.get_all("Classifier") or [] if c.startswith("License ::")],
            summary=meta.get("Summary") or "", homepage=meta.get("Home-page") or (urls[0] if urls else ""),
        )
    return result


def closure(dists: dict[str, Distribution], root: str) -> dict[str, set[str]]:
    """The distributions ``root`` needs, itself included, each with the extras asked of it."""
    root = normalize(root)
    if root not in dists:
        raise UsageError(f"{root} is not installed in this environment; nothing to walk from.")
    reached: dict[str, set[str]] = {root: set()}
    stack = [(root, "")]
    while stack:
        name, extra = stack.pop()
        for child, child_extras in dists[name].requires.get(extra, []):
            wanted = {""} | set(child_extras)
            new = wanted - reached.get(child, set()) if child in reached else wanted
            reached.setdefault(child, set()).update(child_extras)
            stack.extend((child, e) for e in new)
    return reached


def depends_on(dists: dict[str, Distribution], name: str, extras: Iterable[str] = ()) -> list[str]:
    """The installed distributions ``name`` requires (with ``extras``)."""
    dist = dists[name]
    return sorted({child for extra in ("", *extras) for child, _ in dist.requires.get(extra, [])})


# -- a project's pins ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Package:
    """One exact version a project uses, and the file that says so."""

    ecosystem: str
    name: str
    version: str
    source: str


@dataclass
class ProjectInventory:
    packages: list[Package] = field(default_factory=list)
    unpinned: list[tuple[str, str]] = field(default_factory=list)
    """(requirement, file) for requirements without one exact version: not scanned."""
    sources: list[str] = field(default_factory=list)

    def add(self, ecosystem: str, name: str, version: str, source: str) -> None:
        name = normalize(name) if ecosystem == PYPI else name
        if not any(p.ecosystem == ecosystem and p.name == name and p.version == version for p in self.packages):
            self.packages.append(Package(ecosystem, name, version, source))


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read {path}: {exc}") from None


def _toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(_read(path))
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"{path} is not valid TOML ({exc}); fix it or remove it and scan again.") from None


def _json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(_read(path))
    except json.JSONDecodeError as exc:
        raise UsageError(f"{path} is not valid JSON ({exc}); fix it or remove it and scan again.") from None
    return data if isinstance(data, dict) else {}


def _requirement(inventory: ProjectInventory, text: str, source: str) -> None:
    text = text.split(" #", 1)[0].split(" --hash", 1)[0].strip().rstrip("\\").strip()
    if not text or text.startswith(("#", "-")):
        return
    try:
        requirement = Requirement(text)
    except InvalidRequirement:
        inventory.unpinned.append((text, source))
        return
    specifiers = list(requirement.specifier)
    if len(specifiers) == 1 and specifiers[0].operator in ("==", "===") and "*" not in specifiers[0].version:
        inventory.add(PYPI, requirement.name, specifiers[0].version, source)
    else:
        inventory.unpinned.append((text, source))


def _lock_packages(inventory: ProjectInventory, path: Path, source: str) -> None:
    for package in _toml(path).get("package", []):
        source_table = package.get("source") or {}
        if isinstance(source_table, dict) and ({"editable", "virtual"} & set(source_table)):
            continue  # the project itself
        if package.get("name") and package.get("version"):
            inventory.add(PYPI, package["name"], str(package["version"]), source)


def _npm_lock(inventory: ProjectInventory, path: Path, source: str) -> None:
    data = _json(path)
    packages = data.get("packages")
    if isinstance(packages, dict):  # lockfileVersion 2 and 3
        for location, entry in packages.items():
            if not location or not isinstance(entry, dict) or entry.get("link") or "version" not in entry:
                continue
            name = entry.get("name") or location.rsplit("node_modules/", 1)[-1]
            inventory.add(NPM, name, str(entry["version"]), source)
        return
    stack = [data.get("dependencies") or {}]  # lockfileVersion 1: nested dependencies
    while stack:
        for name, entry in stack.pop().items():
            if isinstance(entry, dict) and "version" in entry:
                inventory.add(NPM, name, str(entry["version"]), source)
                stack.append(entry.get("dependencies") or {})


def project_packages(root: Path) -> ProjectInventory:
    """The exact package versions the project at ``root`` pins (see the module's docstring)."""
    inventory = ProjectInventory()
    for lock in ("uv.lock", "poetry.lock", "pdm.lock"):
        if (root / lock).is_file():
            inventory.sources.append(lock)
            _lock_packages(inventory, root / lock, lock)
    if (root / "Pipfile.lock").is_file():
        inventory.sources.append("Pipfile.lock")
        for section in ("default", "develop"):
            for name, entry in (_json(root / "Pipfile.lock").get(section) or {}).items():
                version = str((entry or {}).get("version", ""))
                if version.startswith("=="):
                    inventory.add(PYPI, name, version[2:], "Pipfile.lock")
    requirement_files = sorted({*root.glob("requirements*.txt"), *root.glob("requirements/*.txt")})
    for path in requirement_files:
        relative = path.relative_to(root).as_posix()
        inventory.sources.append(relative)
        for line in _read(path).splitlines():
            _requirement(inventory, line, relative)
    if (root / "pyproject.toml").is_file() and not any(s.endswith(".lock") for s in inventory.sources):
        project = _toml(root / "pyproject.toml").get("project", {})
        inventory.sources.append("pyproject.toml")
        for text in [*project.get("dependencies", []),
                     *(r for group in project.get("optional-dependencies", {}).values() for r in group)]:
            _requirement(inventory, str(text), "pyproject.toml")
    if (root / "package-lock.json").is_file():
        inventory.sources.append("package-lock.json")
        _npm_lock(inventory, root / "package-lock.json", "package-lock.json")
    return inventory
