"""Release versions: semantic versions (``X.Y.Z`` or ``X.Y.Z-pre.1``), and how the versions projects
declare in PEP 440 form map onto them.

A declared version (pyproject.toml, setup.cfg, ``__version__``, a tag like ``2.0`` or ``10.5``) is
read as semver when it is one, else as PEP 440 and mapped:

- missing release numbers are zeros: ``10.5`` -> ``10.5.0``, ``3`` -> ``3.0.0``;
- pre-releases keep their place: ``1.0.0a1`` -> ``1.0.0-alpha.1``, ``b2`` -> ``beta.2``,
  ``rc1`` -> ``rc.1``, ``.dev3`` -> ``dev.3`` (``2.6.0.dev0`` -> ``2.6.0-dev.0``); the next release
  after a pre-release is its release (``1.0.0rc1`` + a fix -> ``1.0.0``);
- post-releases and local labels are not releases of their own: ``1.0.post1`` and ``1.0+ubuntu``
  count as ``1.0.0``;
- epochs (``1!2.0``) and more than three release numbers (``1.2.3.4``) have no semver form: such a
  declared version is refused, as is anything that is not a version (``banana``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from aigentflow.exceptions import UsageError

_IDENT = r"(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)"
_SEMVER = re.compile(rf"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-({_IDENT}(?:\.{_IDENT})*))?$")
_PRE_NAMES = {"a": "alpha", "b": "beta", "rc": "rc"}
_LEVELS = ("patch", "minor", "major")


@dataclass(frozen=True)
class Version:
    major: int
    minor: int
    patch: int
    pre: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Version | None:
        """A strict semantic version (no ``v``, no ``+build``), or None."""
        match = _SEMVER.match(text)
        if not match:
            return None
        pre = tuple(match.group(4).split(".")) if match.group(4) else ()
        return cls(int(match.group(1)), int(match.group(2)), int(match.group(3)), pre)

    @classmethod
    def from_declared(cls, text: str) -> Version | None:
        """A declared version (semver, else PEP 440, an optional leading ``v``) mapped to semver, or None."""
        bare = text.strip()
        bare = bare[1:] if bare[:1] in ("v", "V") and bare[1:2].isdigit() else bare
        strict = cls.parse(bare)
        if strict is not None:
            return strict
        from packaging.version import InvalidVersion
        from packaging.version import Version as Pep440

        try:
            parsed = Pep440(bare)
        except InvalidVersion:
            return None
        if parsed.epoch or len(parsed.release) > 3:
            return None
        major, minor, patch = (*parsed.release, 0, 0)[:3]
        pre: tuple[str, ...] = ()
        if parsed.pre:
            pre = (_PRE_NAMES[parsed.pre[0]], str(parsed.pre[1]))
        if parsed.dev is not None:
            pre += ("dev", str(parsed.dev))
        return cls(major, minor, patch, pre)

    def __str__(self) -> str:
        core = f"{self.major}.{self.minor}.{self.patch}"
        return f"{core}-{'.'.join(self.pre)}" if self.pre else core

    def precedence(self) -> tuple:
        """Semver precedence: a pre-release sorts before its release; numeric identifiers numerically."""
        pre = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in self.pre)
        return (self.major, self.minor, self.patch, (0, pre) if self.pre else (1, ()))

    def bump(self, level: str) -> Version:
        """The next version for a change of ``level``: a pre-release gives its release; before 1.0.0 a
        breaking change bumps the minor."""
        if self.pre:
            return Version(self.major, self.minor, self.patch)
        if level == "major" and self.major == 0:
            level = "minor"
        if level == "major":
            return Version(self.major + 1, 0, 0)
        if level == "minor":
            return Version(self.major, self.minor + 1, 0)
        return Version(self.major, self.minor, self.patch + 1)


def highest_level(levels: list[str]) -> str | None:
    return max(levels, key=_LEVELS.index) if levels else None


def parse_requested(text: str, prefix: str) -> Version:
    """``--version``: a strict semantic version, with or without the tag prefix or ``v``."""
    bare = text.strip()
    for strip in (prefix, "v"):
        if strip and bare.startswith(strip) and Version.parse(bare[len(strip):]):
            bare = bare[len(strip):]
    version = Version.parse(bare)
    if version is None:
        hint = " (build metadata `+...` is not allowed in a release tag)" if "+" in bare else ""
        raise UsageError(f"{text!r} is not a semantic version{hint}; give X.Y.Z, e.g. --version 1.4.0 or "
                         "--version 2.0.0-rc.1. Nothing was changed.")
    return version


def tag_version(tag: str, prefix: str) -> Version | None:
    """The version a release tag names: ``<prefix>X.Y.Z``, ``vX.Y.Z`` or ``X.Y.Z`` (also ``X.Y``, PEP 440
    forms such as ``2.0rc1``); None for other tags (``latest``, ``3``, ``release-2024``)."""
    for strip in dict.fromkeys((prefix, "v", "")):
        if tag.startswith(strip) and tag[len(strip):][:1].isdigit():
            rest = tag[len(strip):]
            if "." in rest and (version := Version.from_declared(rest)) is not None:
                return version
    return None
