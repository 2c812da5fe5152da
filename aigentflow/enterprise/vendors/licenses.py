"""A distribution's license as an SPDX expression, and whether a license policy allows it.

The license is read, in this order, from ``License-Expression`` (PEP 639, SPDX already), the
``License`` field (free text: a name, an SPDX id, or the whole license text, recognised by its
first lines) and the ``License ::`` classifiers; what none of them names is ``UNKNOWN``.
A policy is a deny list (an id denies itself and its ``-only``/``-or-later`` forms) and, when
given, an allow list; ``A OR B`` passes when either passes, ``A AND B`` when both do.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from aigentflow.enterprise.vendors.inventory import Distribution

UNKNOWN = "UNKNOWN"

CLASSIFIERS = {
    "MIT License": "MIT", "MIT No Attribution License (MIT-0)": "MIT-0",
    "Apache Software License": "Apache-2.0", "BSD License": "BSD-3-Clause",
    "ISC License (ISCL)": "ISC", "Python Software Foundation License": "PSF-2.0",
    "Mozilla Public License 2.0 (MPL 2.0)": "MPL-2.0", "Mozilla Public License 1.1 (MPL 1.1)": "MPL-1.1",
    "GNU General Public License v2 (GPLv2)": "GPL-2.0-only",
    "GNU General Public License v2 or later (GPLv2+)": "GPL-2.0-or-later",
    "GNU General Public License v3 (GPLv3)": "GPL-3.0-only",
    "GNU General Public License v3 or later (GPLv3+)": "GPL-3.0-or-later",
    "GNU Lesser General Public License v2 (LGPLv2)": "LGPL-2.0-only",
    "GNU Lesser General Public License v2 or later (LGPLv2+)": "LGPL-2.0-or-later",
    "GNU Lesser General Public License v3 (LGPLv3)": "LGPL-3.0-only",
    "GNU Lesser General Public License v3 or later (LGPLv3+)": "LGPL-3.0-or-later",
    "GNU Library or Lesser General Public License (LGPL)": "LGPL-2.0-or-later",
    "GNU Affero General Public License v3": "AGPL-3.0-only",
    "GNU Affero General Public License v3 or later (AGPLv3+)": "AGPL-3.0-or-later",
    "Historical Permission Notice and Disclaimer (HPND)": "HPND", "The Unlicense (Unlicense)": "Unlicense",
    "Eclipse Public License 2.0 (EPL-2.0)": "EPL-2.0", "Boost Software License 1.0 (BSL-1.0)": "BSL-1.0",
    "zlib/libpng License": "Zlib", "Academic Free License (AFL)": "AFL-3.0",
    "Server Side Public License (SSPL)": "SSPL-1.0",
}
"""The trove classifiers' license names (after ``License :: OSI Approved ::``) and their SPDX ids."""

NAMES = [
    (r"^(the )?mit( license)?( \(mit\))?$|^expat", "MIT"),
    (r"^apache(-| )?(software )?(license)?[ ,-]*(version |v)?2(\.0)?$|^apache$|^asl ?2", "Apache-2.0"),
    (r"^(new |modified |revised )?bsd[ -]?3|^3-clause bsd|^bsd( license)?$|^(new|modified|revised) bsd",
     "BSD-3-Clause"),
    (r"^(simplified |freebsd )?bsd[ -]?2|^2-clause bsd|^simplified bsd", "BSD-2-Clause"),
    (r"^psf|^python software foundation", "PSF-2.0"),
    (r"^isc", "ISC"), (r"^mpl[ -]?2|^mozilla public license,? (version )?2", "MPL-2.0"),
    (r"^lgpl[ -]?v?3\+|^lgpl-3\.0-or-later", "LGPL-3.0-or-later"), (r"^lgpl[ -]?v?3", "LGPL-3.0-only"),
    (r"^lgpl[ -]?v?2\.1|^lgpl$", "LGPL-2.1-or-later"),
    (r"^agpl[ -]?v?3", "AGPL-3.0-only"), (r"^gpl[ -]?v?3\+", "GPL-3.0-or-later"), (r"^gpl[ -]?v?3", "GPL-3.0-only"),
    (r"^gpl[ -]?v?2\+", "GPL-2.0-or-later"), (r"^gpl[ -]?v?2", "GPL-2.0-only"),
    (r"^unlicense", "Unlicense"), (r"^hpnd", "HPND"), (r"^zlib", "Zlib"), (r"^cc0", "CC0-1.0"),
]
"""Free-text ``License`` values (lower case) and the SPDX id they mean."""

TEXTS = [
    ("permission is hereby granted, free of charge", "MIT"),
    ("apache license", "Apache-2.0"),
    ("redistribution and use in source and binary forms", "BSD-3-Clause"),
    ("mozilla public license version 2.0", "MPL-2.0"),
    ("gnu lesser general public license", "LGPL-3.0-or-later"),
    ("gnu affero general public license", "AGPL-3.0-only"),
    ("gnu general public license", "GPL-3.0-or-later"),
    ("permission to use, copy, modify, and/or distribute this software for any", "ISC"),
]
"""Phrases from the start of a license's whole text (a ``License`` field holding the text)."""

_SPDX_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+-]*$")
_TOKEN = re.compile(r"\(|\)|[^\s()]+")


def normalize_text(text: str) -> str | None:
    """The SPDX expression a ``License`` field's value means, or None when it says nothing known."""
    text = text.strip()
    if not text or text.upper() in (UNKNOWN, "NONE", "N/A"):
        return None
    if _SPDX_ID.match(text) and re.search(r"\d|-", text) and not re.search(r"v\d", text.lower()):
        return text  # an SPDX id: "LGPL-2.1-only", "BSD-3-Clause"
    if "\n" not in text and len(text) <= 120 and re.search(r"\s(AND|OR|WITH)\s", text) and _is_expression(text):
        return text  # already an SPDX expression: "MIT OR Apache-2.0"
    first = text.splitlines()[0].strip().lower().rstrip(".")
    for pattern, spdx in NAMES:
        if re.search(pattern, first):
            return spdx
    head = " ".join(text[:600].lower().split())
    return next((spdx for phrase, spdx in TEXTS if phrase in head), None)


def _is_expression(text: str) -> bool:
    """Whether ``text`` reads as an SPDX expression: ids joined by AND/OR (ids of one word need one)."""
    operators = ("(", ")", "AND", "OR", "WITH")
    tokens = _TOKEN.findall(text)
    if not tokens or not all(t in operators or _SPDX_ID.match(t) for t in tokens):
        return False
    return bool({"AND", "OR"} & set(tokens)) or all(t in operators or re.search(r"\d|-", t) for t in tokens)


@dataclass
class LicenseInfo:
    name: str
    version: str
    expression: str
    source: str
    """Where it was read: License-Expression, License, classifier, or none."""


def license_of(dist: Distribution) -> LicenseInfo:
    """The SPDX expression of an installed distribution's license, and where it came from."""
    if dist.license_expression and dist.license_expression.strip():
        return LicenseInfo(dist.key, dist.version, dist.license_expression.strip(), "License-Expression")
    if dist.license and (spdx := normalize_text(dist.license)):
        return LicenseInfo(dist.key, dist.version, spdx, "License")
    ids = []
    for classifier in dist.classifiers:
        name = classifier.rsplit("::", 1)[-1].strip()
        if name in CLASSIFIERS and CLASSIFIERS[name] not in ids:
            ids.append(CLASSIFIERS[name])
    if ids:
        return LicenseInfo(dist.key, dist.version, " OR ".join(ids), "classifier")
    return LicenseInfo(dist.key, dist.version, UNKNOWN, "none")


# -- policy ----------------------------------------------------------------------------------------


def _ids_match(license_id: str, rule: str) -> bool:
    """Whether a rule names this id: ``GPL-3.0`` names ``GPL-3.0``, ``GPL-3.0-only``, ``GPL-3.0-or-later``
    and ``GPL-3.0+``, never ``LGPL-3.0``."""
    a, b = license_id.upper().rstrip("+"), rule.upper().rstrip("+")
    return a == b or a.startswith(b + "-") or b.startswith(a + "-")


@dataclass
class Policy:
    deny: list[str] = field(default_factory=list)
    allow: list[str] = field(default_factory=list)
    """Empty: every license not denied is allowed."""
    fail_unknown: bool = False

    def allows_id(self, license_id: str) -> bool:
        if any(_ids_match(license_id, rule) for rule in self.deny):
            return False
        return not self.allow or any(_ids_match(license_id, rule) for rule in self.allow)

    def allows(self, expression: str) -> bool:
        """Whether an SPDX expression passes (an expression that does not parse passes only if its
        whole text is an allowed id)."""
        try:
            return _evaluate(_TOKEN.findall(expression), self.allows_id)
        except ValueError:
            return self.allows_id(expression)


def _evaluate(tokens: list[str], allows: object) -> bool:
    """Evaluate ``A OR B AND (C WITH exception)``: AND binds tighter than OR; an exception is ignored."""
    position = 0

    def atom() -> bool:
        nonlocal position
        if position >= len(tokens):
            raise ValueError("expression ends early")
        token = tokens[position]
        position += 1
        if token == "(":
            value = either()
            if position >= len(tokens) or tokens[position] != ")":
                raise ValueError("unbalanced parenthesis")
            position += 1
        elif token in (")", "AND", "OR", "WITH"):
            raise ValueError(f"unexpected {token}")
        else:
            value = bool(allows(token))  # type: ignore[operator]
        if position < len(tokens) and tokens[position] == "WITH":
            position += 2
        return value

    def both() -> bool:
        nonlocal position
        value = atom()
        while position < len(tokens) and tokens[position] == "AND":
            position += 1
            value = atom() and value
        return value

    def either() -> bool:
        nonlocal position
        value = both()
        while position < len(tokens) and tokens[position] == "OR":
            position += 1
            value = both() or value
        return value

    result = either()
    if position != len(tokens):
        raise ValueError("trailing tokens")
    return result
