"""Whether a version is inside an OSV ``affected`` entry: its ``versions`` list and its ranges.

PyPI versions are compared with ``packaging.version`` (PEP 440); npm versions with the SemVer 2.0
ordering below (``SEMVER`` ranges, and ``ECOSYSTEM`` ranges of npm). A range's events are read as
the OSV schema says: sorted by version, a version is affected from an ``introduced`` ("0": from the
first release) up to a ``fixed`` (excluded), a ``last_affected`` (included) or a ``limit`` (excluded).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import total_ordering
from typing import Any

from packaging.version import InvalidVersion, Version

_SEMVER = re.compile(
    r"^v?(?P<major>0|[1-9]\d*)(?:\.(?P<minor>0|[1-9]\d*))?(?:\.(?P<patch>0|[1-9]\d*))?"
    r"(?:-(?P<pre>[0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$"
)


@total_ordering
class SemVer:
    """A SemVer 2.0 version: ``1.2.3``, ``1.2.3-rc.1`` (build metadata ignored, as SemVer says)."""

    def __init__(self, text: str) -> None:
        match = _SEMVER.match(text.strip())
        if not match:
            raise ValueError(f"{text!r} is not a semantic version")
        self.text = text
        self.release = tuple(int(match.group(part) or 0) for part in ("major", "minor", "patch"))
        pre = match.group("pre")
        self.pre: tuple[tuple[int, int | str], ...] = tuple(
            (0, int(part)) if part.isdigit() else (1, part) for part in pre.split(".")
        ) if pre else ()

    def _key(self) -> tuple[Any, ...]:
        # A release sorts after its pre-releases: (release, no pre-release) > (release, any pre-release).
        return (self.release, not self.pre, self.pre)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SemVer) and self._key() == other._key()

    def __lt__(self, other: SemVer) -> bool:
        return self._key() < other._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"SemVer({self.text!r})"


Parser = Callable[[str], Any]


def parser_for(ecosystem: str, range_type: str = "ECOSYSTEM") -> Parser:
    """How versions of ``ecosystem`` are parsed for a range of ``range_type``."""
    if range_type == "SEMVER" or ecosystem == "npm":
        return SemVer
    return Version


def parse(version: str, parse_version: Parser) -> Any | None:
    try:
        return parse_version(version)
    except (InvalidVersion, ValueError):
        return None


def in_range(version: Any, events: list[Mapping[str, str]], parse_version: Parser) -> bool:
    """Whether ``version`` (already parsed) is affected by a range with these ``events``."""
    parsed: list[tuple[Any, int, str]] = []
    for event in events:
        for kind, value in event.items():
            if kind == "introduced" and value == "0":
                parsed.append((None, 0, kind))
                continue
            bound = parse(value, parse_version)
            if bound is not None and kind in ("introduced", "fixed", "last_affected", "limit"):
                parsed.append((bound, 1, kind))
    # "0" first, then by version; at one version an introduced comes before what ends it.
    parsed.sort(key=lambda item: (0,) if item[0] is None else (1, item[0], item[2] != "introduced"))
    affected = False
    for bound, _, kind in parsed:
        if kind == "introduced":
            if bound is None or version >= bound:
                affected = True
        elif (kind in ("fixed", "limit") and version >= bound) or (kind == "last_affected" and version > bound):
            affected = False
    return affected


def is_affected(version_text: str, affected: Mapping[str, Any]) -> bool:
    """Whether ``version_text`` is one of an OSV ``affected`` entry's versions or in one of its ranges."""
    if version_text in (affected.get("versions") or []):
        return True
    ecosystem = str(affected.get("package", {}).get("ecosystem", ""))
    for one in affected.get("ranges") or []:
        range_type = one.get("type", "ECOSYSTEM")
        if range_type not in ("ECOSYSTEM", "SEMVER"):
            continue  # GIT ranges name commits, not releases
        parse_version = parser_for(ecosystem, range_type)
        version = parse(version_text, parse_version)
        if version is not None and in_range(version, one.get("events") or [], parse_version):
            return True
    return False


def fixed_versions(affected: Mapping[str, Any]) -> list[str]:
    """The ``fixed`` versions an entry's ranges name (where an upgrade ends the exposure)."""
    return [event["fixed"] for one in affected.get("ranges") or [] for event in one.get("events") or []
            if "fixed" in event]
