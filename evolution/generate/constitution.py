"""Constitutional validation of a candidate role version: deterministic rules, each violation naming the
rule and the offending field. A candidate with any violation is rejected (never written as pending).

The rules compare the candidate with the version it would replace (the incumbent):

- ``identity``: name, implementation, workflow, steps, helps, flag, deterministic and model are unchanged
  (a candidate changes its own role only, and never where its calls go).
- ``tools``: its MCP tool allowlist is no wider (every pattern already allowed; none (the run's) only if
  the incumbent had none).
- ``skills``: only skills that exist, and no wider than a restricted incumbent.
- ``budget``: set, and within the cap (the incumbent's budget, else ``BUDGET_CAP``).
- ``tests``: its instructions never tell the agent to skip, delete, disable or weaken tests.
- ``secrets``: no secret (the Redactor's patterns and the environment's secret values) and no URL.
- ``size``: its instructions are at most ``MAX_INSTRUCTIONS_CHARS`` characters and not empty.
- ``constitution``: its prompt layers are its own (never the constitution, the output format or another
  role's), and its instructions do not tell the agent to set the constitution aside.
Sandbox limits are not part of a role's spec (the file format refuses unknown fields), so a candidate
cannot carry any.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any

MAX_INSTRUCTIONS_CHARS = 4000
BUDGET_CAP = 20
IDENTITY_FIELDS = ("name", "implementation", "workflow", "steps", "helps", "flag", "deterministic", "model")

_WEAKEN_TESTS = re.compile(
    r"\b(skip|delete|remove|disable|weaken|comment out|xfail)\w*\s+(\w+\s+){0,3}(tests?|assertions?|checks?)\b"
    r"|pytest\.mark\.(skip|xfail)|--no-verify|\bassert\s+True\b", re.IGNORECASE)
_URL = re.compile(r"\b[a-z][a-z0-9+.-]*://\S+|\bwww\.\S+", re.IGNORECASE)
_SET_ASIDE = re.compile(r"\b(ignore|disregard|override|forget|bypass)\b\W+(\w+\W+){0,3}"
                        r"(constitution|previous instructions|system prompt|rules above)", re.IGNORECASE)


@dataclass(frozen=True)
class Violation:
    rule: str
    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.rule} ({self.field}): {self.message}"

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def known_skills() -> set[str]:
    root = Path(str(resources.files("aigentflow") / "skills" / "builtin"))
    return {p.name for p in root.iterdir() if p.is_dir()}


def validate(candidate: Any, incumbent: Any, instructions: str, *, redactor: Any = None) -> list[Violation]:
    """Every rule ``candidate`` (an AgentSpec) breaks against ``incumbent``, given its instructions layer."""
    found: list[Violation] = []

    def bad(rule: str, field: str, message: str) -> None:
        found.append(Violation(rule, field, message))

    for name in IDENTITY_FIELDS:
        if getattr(candidate, name) != getattr(incumbent, name):
            bad("identity", name, f"changed from {getattr(incumbent, name)!r} to {getattr(candidate, name)!r}; "
                                  "a generated version may change only its instructions, skills and budget")
    if candidate.tools is None and incumbent.tools is not None:
        bad("tools", "tools", f"unset (any tool the run allows) widens the incumbent's {list(incumbent.tools)}")
    elif candidate.tools is not None and incumbent.tools is not None:
        wider = sorted(set(candidate.tools) - set(incumbent.tools))
        if wider:
            bad("tools", "tools", f"adds {wider} to the allowlist {list(incumbent.tools)}")
    elif candidate.tools is not None and "*" in candidate.tools:
        bad("tools", "tools", "'*' allows every tool")
    if candidate.skills is not None:
        unknown = sorted(set(candidate.skills) - known_skills())
        if unknown:
            bad("skills", "skills", f"no such skill(s): {unknown}; skills are: {sorted(known_skills())}")
        if incumbent.skills is not None and (wider := sorted(set(candidate.skills) - set(incumbent.skills))):
            bad("skills", "skills", f"adds {wider} to the incumbent's {list(incumbent.skills)}")
    elif incumbent.skills is not None:
        bad("skills", "skills", f"unset (any skill) widens the incumbent's {list(incumbent.skills)}")
    cap = incumbent.budget or BUDGET_CAP
    if candidate.budget is None:
        bad("budget", "budget", f"must be set (at most {cap} model calls per step)")
    elif candidate.budget > cap:
        bad("budget", "budget", f"{candidate.budget} is over the cap of {cap} model calls per step")
    if match := _WEAKEN_TESTS.search(instructions):
        bad("tests", "instructions", f"tells the agent to weaken tests: {match.group(0)!r}")
    if _URL.search(instructions):
        bad("secrets", "instructions", f"contains a URL: {_URL.search(instructions).group(0)!r}")
    if redactor is not None and not redactor.is_clean(instructions):
        bad("secrets", "instructions", "contains a secret (it matches a key pattern or a secret value)")
    if not instructions.strip():
        bad("size", "instructions", "is empty")
    elif len(instructions) > MAX_INSTRUCTIONS_CHARS:
        bad("size", "instructions", f"is {len(instructions)} characters, over {MAX_INSTRUCTIONS_CHARS}")
    own = f"agents/{candidate.name}/"
    for layer in candidate.prompt_layers:
        if not layer.startswith(own):
            bad("constitution", "prompt_layers", f"{layer!r} is not one of this version's own layers ({own}*.md)")
    if match := _SET_ASIDE.search(instructions):
        bad("constitution", "instructions", f"sets the constitution aside: {match.group(0)!r}")
    return found
