"""Which CPython versions a project's CI tests on: the supported ones within its ``requires-python``.

``requires-python`` is read from pyproject.toml (``[project] requires-python``, else Poetry's
``[tool.poetry.dependencies] python``, whose ``^3.9`` / ``~3.9`` / ``||`` forms are understood),
setup.cfg (``[options] python_requires``) or setup.py (``python_requires="..."``). The versions are
``SUPPORTED`` intersected with it; when it admits none of them, the newest (end-of-life) version it
admits; when it admits no released CPython at all, or does not parse, ``UsageError`` names the file
and the value.
"""

from __future__ import annotations

import configparser
import re
import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from aigentflow.exceptions import UsageError

SUPPORTED = ("3.10", "3.11", "3.12", "3.13", "3.14")
"""CPython versions with upstream support as of late 2026 (3.9 reached its end of life in October 2025)."""
RELEASED = ("2.7", *(f"3.{minor}" for minor in range(10)), *SUPPORTED)
_PATCHES = range(40)


@dataclass(frozen=True)
class PythonChoice:
    versions: list[str]
    requires: str | None
    source: str | None
    reason: str
    end_of_life: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _span(versions: list[str] | tuple[str, ...]) -> str:
    return versions[0] if len(versions) == 1 else f"{versions[0]}-{versions[-1]}"


def _poetry_to_pep440(text: str) -> str:
    """One ``||``-free Poetry constraint as a PEP 440 specifier (``^3.9`` -> ``>=3.9,<4.0``)."""
    parts = []
    for token in filter(None, re.split(r"[,\s]+", text.strip())):
        if token == "*":
            continue
        if token.startswith("^") or (token.startswith("~") and not token.startswith("~=")):
            floor = token.lstrip("^~")
            numbers = [int(n) for n in floor.split(".") if n.isdigit()]
            if not numbers:
                return token  # left for the parser to refuse
            if token.startswith("^"):
                first = next((i for i, n in enumerate(numbers) if n), len(numbers) - 1)
                upper = [*numbers[:first], numbers[first] + 1]
            else:
                upper = [numbers[0] + 1] if len(numbers) == 1 else [numbers[0], numbers[1] + 1]
            parts += [f">={floor}", f"<{'.'.join(map(str, upper))}"]
        else:
            parts.append(token if token[0] in "<>=!~" else f"=={token}")
    return ",".join(parts)


def declared_requires_python(root: Path) -> tuple[str, str, bool] | None:
    """(the value, where it was read, whether it is in Poetry's syntax), or None."""
    pyproject = root / "pyproject.toml"
    if pyproject.is_file():
        try:
            data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
            data = {}
        value = data.get("project", {}).get("requires-python")
        if value is not None:
            return str(value), "pyproject.toml requires-python", False
        value = data.get("tool", {}).get("poetry", {}).get("dependencies", {}).get("python")
        if value is not None:
            return str(value), "pyproject.toml [tool.poetry.dependencies] python", True
    if (root / "setup.cfg").is_file():
        parser = configparser.ConfigParser(interpolation=None)
        try:
            parser.read_string((root / "setup.cfg").read_text(encoding="utf-8"))
            value = parser.get("options", "python_requires", fallback=None)
        except (OSError, UnicodeDecodeError, configparser.Error):
            value = None
        if value:
            return value.strip(), "setup.cfg python_requires", False
    if (root / "setup.py").is_file():
        match = re.search(r"""python_requires\s*=\s*(['"])([^'"]*)\1""",
                          (root / "setup.py").read_text(encoding="utf-8", errors="replace"))
        if match:
            return match.group(2), "setup.py python_requires", False
    return None


def _admits(specifiers: list[Any], minor: str) -> bool:
    return any(spec.contains(f"{minor}.{patch}") for spec in specifiers for patch in _PATCHES)


def choose_pythons(root: Path) -> PythonChoice:
    """The CPython versions to test the project at ``root`` on, and why."""
    from packaging.specifiers import InvalidSpecifier, SpecifierSet

    declared = declared_requires_python(root)
    if declared is None:
        return PythonChoice(list(SUPPORTED), None, None,
                            f"no requires-python declared: every supported CPython ({_span(SUPPORTED)})")
    value, source, poetry = declared
    try:
        alternatives = value.split("||") if poetry else [value]
        specifiers = [SpecifierSet(_poetry_to_pep440(a) if poetry else a) for a in alternatives]
    except InvalidSpecifier:
        raise UsageError(f"{source} is {value!r}, which is not a version specifier (e.g. \">=3.10\"); fix it, "
                         "then run `aigentflow ci init` again. Nothing was written.") from None
    chosen = [minor for minor in SUPPORTED if _admits(specifiers, minor)]
    if chosen:
        old = [minor for minor in RELEASED[1:-len(SUPPORTED)] if _admits(specifiers, minor)]
        tail = f" ({_span(old)}, which it also admits, {'is' if len(old) == 1 else 'are'} end of life)" if old else ""
        return PythonChoice(chosen, value, source, f"the supported CPython versions ({_span(SUPPORTED)}) within "
                            f"{source} {value}{tail}")
    older = [minor for minor in RELEASED if _admits(specifiers, minor)]
    if not older:
        raise UsageError(f"{source} is {value!r}, which admits no released CPython (the newest aigentflow knows "
                         f"is {SUPPORTED[-1]}); fix it, then run `aigentflow ci init` again. Nothing was written.")
    return PythonChoice([older[-1]], value, source, f"{source} {value} admits no supported CPython "
                        f"({_span(SUPPORTED)}): {older[-1]}, the newest it admits, which is end of life",
                        end_of_life=True)
