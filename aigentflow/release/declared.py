"""The version a project declares, read from a commit (the integration branch's head, not the
working tree), first found wins:

1. ``pyproject.toml``: ``[project] version`` (unless ``version`` is listed in ``dynamic``), then
   ``[tool.poetry] version``; a dynamic version is followed to ``[tool.setuptools.dynamic] version``
   (``attr`` or ``file``) or ``[tool.hatch.version] path``;
2. ``setup.cfg``: ``[metadata] version``, also ``attr: pkg.__version__`` (the literal in that module)
   and ``file: VERSION``;
3. ``package.json``: ``version``;
4. ``__version__ = "..."`` in a package's ``__init__.py``, ``_version.py``, ``__version__.py``,
   ``__about__.py`` or ``version.py``, in ``src/<pkg>/`` or ``<pkg>/`` (the package named like the
   project first).

A value that is found but is not a version is refused, naming the file and the value.
"""

from __future__ import annotations

import configparser
import json
import re
import tomllib
from dataclasses import dataclass
from typing import Any

from aigentflow.exceptions import UsageError
from aigentflow.gitops.runner import Git
from aigentflow.release.versions import Version

VERSION_FILES = ("__init__.py", "_version.py", "__version__.py", "__about__.py", "version.py")
NOT_PACKAGES = {"test", "tests", "testing", "doc", "docs", "example", "examples", "benchmarks", "scripts",
                "build", "dist", "node_modules", "site-packages"}
_DUNDER = re.compile(r"""^__version__\s*(?::\s*\w+\s*)?=\s*(?:\w+\s*=\s*)*(['"])(?P<value>[^'"\n]*)\1""",
                     re.MULTILINE)


@dataclass(frozen=True)
class Declared:
    """A declared version: where it was read and what it said."""

    file: str
    field: str
    value: str
    version: Version

    def describe(self) -> str:
        return f"{self.file} {self.field} {self.value}" if self.field else f"{self.file} {self.value}"

    def to_dict(self) -> dict[str, str]:
        return {"file": self.file, "field": self.field, "value": self.value, "version": str(self.version)}


class Tree:
    """Files of one commit, read through git."""

    def __init__(self, git: Git, commit: str) -> None:
        self.git, self.commit = git, commit

    def read(self, path: str) -> str | None:
        proc = self.git.run("cat-file", "blob", f"{self.commit}:{path}", check=False)
        return proc.stdout if proc.returncode == 0 else None

    def existing(self, paths: list[str]) -> set[str]:
        """Which of ``paths`` are files of the commit (one git call)."""
        if not paths:
            return set()
        proc = self.git.run("ls-tree", "--name-only", self.commit, "--", *paths, check=False)
        return set(proc.stdout.split("\n")[:-1]) if proc.returncode == 0 else set()

    def dirs(self, path: str = "") -> list[str]:
        spec = f"{self.commit}:{path}" if path else self.commit
        proc = self.git.run("ls-tree", "-d", "--name-only", spec, check=False)
        return proc.stdout.split("\n")[:-1] if proc.returncode == 0 else []


def _declared(file: str, field: str, value: Any) -> Declared:
    text = str(value).strip()
    version = Version.from_declared(text) if isinstance(value, str) else None
    if version is None:
        what = f"{field} {value!r}" if field else repr(value)
        raise UsageError(f"{file} declares {what}, which is not a version aigentflow can release from "
                         "(give X.Y.Z or a PEP 440 version such as 2.5, 2.5.0 or 3.0.0rc1); fix it in "
                         f"{file}, then run `aigentflow release` again. Nothing was changed.")
    return Declared(file, field, text, version)


def _dunder_in(tree: Tree, path: str) -> Declared | None:
    text = tree.read(path)
    match = _DUNDER.search(text) if text else None
    return _declared(path, "__version__", match.group("value")) if match else None


def _module_files(tree: Tree, dotted: str) -> list[str]:
    """The files a dotted module name may live in, at the root or under ``src/``."""
    parts = dotted.split(".")
    stem = "/".join(parts)
    return [f"{base}{stem}{suffix}" for base in ("", "src/") for suffix in ("/__init__.py", ".py")]


def _attr(tree: Tree, file: str, reference: str) -> Declared | None:
    """``attr: pkg.module.NAME``: the literal ``NAME = "..."`` in that module."""
    module, _, name = reference.strip().rpartition(".")
    if not module or not name.isidentifier():
        return None
    assign = re.compile(rf"""^{re.escape(name)}\s*(?::\s*\w+\s*)?=\s*(['"])(?P<value>[^'"\n]*)\1""", re.MULTILINE)
    for path in _module_files(tree, module):
        text = tree.read(path)
        match = assign.search(text) if text else None
        if match:
            return _declared(path, name, match.group("value"))
    return None


def _file(tree: Tree, path: str) -> Declared | None:
    text = tree.read(path.strip())
    return _declared(path.strip(), "", text.strip()) if text is not None else None


def _from_pyproject(tree: Tree) -> Declared | None:
    text = tree.read("pyproject.toml")
    if text is None:
        return None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"pyproject.toml does not parse as TOML ({exc}); fix it, then run `aigentflow release` "
                         "again. Nothing was changed.") from None
    project = data.get("project", {})
    if "version" in project and "version" not in project.get("dynamic", []):
        return _declared("pyproject.toml", "version", project["version"])
    tool = data.get("tool", {})
    if "version" in tool.get("poetry", {}):
        return _declared("pyproject.toml", "tool.poetry version", tool["poetry"]["version"])
    dynamic = tool.get("setuptools", {}).get("dynamic", {}).get("version", {})
    if isinstance(dynamic, dict) and isinstance(dynamic.get("attr"), str):
        return _attr(tree, "pyproject.toml", dynamic["attr"])
    if isinstance(dynamic, dict) and isinstance(dynamic.get("file"), str | list):
        files = dynamic["file"]
        return _file(tree, files if isinstance(files, str) else files[0])
    hatch = tool.get("hatch", {}).get("version", {})
    if isinstance(hatch, dict) and isinstance(hatch.get("path"), str):
        return _dunder_in(tree, hatch["path"])
    return None


def _from_setup_cfg(tree: Tree) -> Declared | None:
    text = tree.read("setup.cfg")
    if text is None:
        return None
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read_string(text)
    except configparser.Error:
        return None
    value = parser.get("metadata", "version", fallback=None)
    if value is None:
        return None
    if value.strip().startswith("attr:"):
        return _attr(tree, "setup.cfg", value.strip()[5:])
    if value.strip().startswith("file:"):
        return _file(tree, value.strip()[5:].split(",")[0])
    return _declared("setup.cfg", "version", value)


def _from_package_json(tree: Tree) -> Declared | None:
    text = tree.read("package.json")
    try:
        data = json.loads(text) if text else None
    except json.JSONDecodeError:
        return None
    if isinstance(data, dict) and "version" in data:
        return _declared("package.json", "version", data["version"])
    return None


def _project_name(tree: Tree) -> str:
    try:
        data = tomllib.loads(tree.read("pyproject.toml") or "")
    except tomllib.TOMLDecodeError:
        return ""
    name = data.get("project", {}).get("name") or data.get("tool", {}).get("poetry", {}).get("name") or ""
    return re.sub(r"[-_.]+", "_", str(name)).lower()


def _from_packages(tree: Tree) -> Declared | None:
    name = _project_name(tree)
    packages = [f"src/{d}" for d in tree.dirs("src")] + tree.dirs()
    packages = [p for p in packages if p.rpartition("/")[2].isidentifier()
                and p.rpartition("/")[2] not in NOT_PACKAGES and not p.startswith(".")]
    packages.sort(key=lambda p: p.rpartition("/")[2].lower() != name)
    candidates = [f"{package}/{file}" for package in packages for file in VERSION_FILES]
    existing = tree.existing(candidates)
    for path in candidates:
        found = _dunder_in(tree, path) if path in existing else None
        if found:
            return found
    return None


def declared_version(git: Git, commit: str) -> Declared | None:
    """The version the project declares at ``commit``, or None; ``UsageError`` when it is not a version."""
    tree = Tree(git, commit)
    for source in (_from_pyproject, _from_setup_cfg, _from_package_json, _from_packages):
        found = source(tree)
        if found is not None:
            return found
    return None
