"""Detection rules as data: the built-in ones, and ``.aigentflow/incidents/rules.toml`` over them.

A rule names a detector (``kind``, one of ``detectors.DETECTORS``), its window and threshold, and how its
findings are classified: ``severity`` (the base), ``facets`` (a severity per variant of the condition) and
``escalate`` (a severity once the finding's value reaches a number). A project's file may change any field
of a built-in rule (by ``id``), turn one off (``enabled = false``) or add rules of a known kind.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from aigentflow.exceptions import UsageError
from aigentflow.incidents.records import SEVERITIES, Finding, rank, worse

KINDS = ("error_rate", "crash_loop", "canary_regression", "quota_exhausted", "kill_switch", "sandbox_escape",
         "secret_found")


class RuleError(UsageError):
    """A rules file that cannot be used: it says which rule and field, and what to write."""


@dataclass(frozen=True)
class Rule:
    id: str
    kind: str
    description: str
    severity: str
    window_s: float = 3600.0
    threshold: float = 0.0
    min_count: int = 1
    facets: dict[str, str] = field(default_factory=dict)
    escalate: dict[str, float] = field(default_factory=dict)
    enabled: bool = True

    def classify(self, finding: Finding) -> str:
        """The finding's severity: the base (or its facet's), raised by every ``escalate`` level reached."""
        severity = self.facets.get(finding.facet, self.severity)
        for level, at_least in self.escalate.items():
            if finding.value >= at_least:
                severity = worse(severity, level)
        return severity


BUILTIN: tuple[Rule, ...] = (
    Rule("error-rate-spike", "error_rate",
         "Share of failed runs, failed steps or error spans (agent and model calls) over the window",
         "SEV3", window_s=3600, threshold=0.2, min_count=5, escalate={"SEV2": 0.5, "SEV1": 0.9}),
    Rule("crash-loop", "crash_loop",
         "One run resumed, or one step (role) failing, this many times in the window",
         "SEV2", window_s=3600, threshold=3, escalate={"SEV1": 10}),
    Rule("canary-regression", "canary_regression",
         "The evolution loop rolled a canary back (its incident in .aigentflow/evolution.db); value: the percent "
         "of runs that were routed to the candidate", "SEV3", window_s=0, escalate={"SEV2": 50}),
    Rule("quota-exhausted", "quota_exhausted",
         "A quota refused work (`quota.exhausted` audit entries); value: refusals in the window",
         "SEV2", window_s=3600, escalate={"SEV1": 100}),
    Rule("kill-switch-pulled", "kill_switch",
         "An emergency switch is on: pause-all, disable-generated-agents, disable-evolution, single-tenant-mode "
         "(or an admin rollback)",
         "SEV3", window_s=0, facets={"pause_all": "SEV2", "disable_generated_agents": "SEV3",
                                     "disable_evolution": "SEV3", "rollback": "SEV3"}),
    Rule("sandbox-escape-attempt", "sandbox_escape",
         "A sandboxed command left processes behind, hit the process limit, or was refused a path outside "
         "its root; value: such commands in the window", "SEV2", window_s=86400, escalate={"SEV1": 5}),
    Rule("secret-found", "secret_found",
         "A secret reached the store unredacted (SEV1), was redacted out of a trace (SEV3), or was withheld from "
         "a prompt (`secret.withheld`, SEV4)", "SEV3", window_s=86400,
         facets={"in_store": "SEV1", "redacted_in_trace": "SEV3", "withheld": "SEV4"}),
)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str | int | float, what: str = "duration") -> float:
    """Seconds in ``90``, ``90s``, ``15m``, ``2h``, ``1d``, ``1w``."""
    if isinstance(text, bool):
        raise UsageError(f"{what} {text!r} is not a duration; write e.g. 30m, 2h or 1d")
    if isinstance(text, int | float):
        return float(text)
    match = _DURATION.match(text)
    if not match:
        raise UsageError(f"{what} {text!r} is not a duration; write e.g. 30m, 2h or 1d")
    return float(match.group(1)) * _UNITS[match.group(2)]


def rules_file(state_dir: Path) -> Path:
    return Path(state_dir) / "incidents" / "rules.toml"


def load_rules(state_dir: Path | None) -> list[Rule]:
    """The built-in rules with the project's ``rules.toml`` applied (disabled ones left out)."""
    rules = {rule.id: rule for rule in BUILTIN}
    path = rules_file(state_dir) if state_dir else None
    if path is not None and path.exists():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise RuleError(f"cannot read {path}: {exc}; fix the file or remove it") from None
        unknown = set(data) - {"rules"}
        if unknown or not isinstance(data.get("rules", []), list):
            raise RuleError(f"{path}: write each rule as a [[rules]] table (found {sorted(unknown) or 'rules'})")
        for number, table in enumerate(data.get("rules", []), start=1):
            rule = _rule(table, rules, f"{path}, rule #{number}")
            rules[rule.id] = rule
    return [rule for rule in rules.values() if rule.enabled]


_FIELDS = {"id", "kind", "description", "severity", "window", "threshold", "min_count", "facets", "escalate",
           "enabled"}


def _rule(table: Any, known: dict[str, Rule], where: str) -> Rule:
    if not isinstance(table, dict) or not isinstance(table.get("id"), str) or not table["id"]:
        raise RuleError(f"{where}: a rule needs an `id` (a string)")
    where = f"{where} ({table['id']})"
    if unknown := sorted(set(table) - _FIELDS):
        raise RuleError(f"{where}: unknown field(s) {unknown}; a rule has {sorted(_FIELDS)}")
    base = known.get(table["id"])
    if base is None:
        if table.get("kind") not in KINDS:
            raise RuleError(f"{where}: a new rule needs `kind`, one of {', '.join(KINDS)}")
        base = Rule(table["id"], table["kind"], "", "SEV3")
    elif "kind" in table and table["kind"] != base.kind:
        raise RuleError(f"{where}: a built-in rule's kind cannot change ({base.kind}); give the rule a new id")
    changes: dict[str, Any] = {}
    for name in ("description", "severity"):
        if name in table:
            if not isinstance(table[name], str):
                raise RuleError(f"{where}: `{name}` must be a string")
            changes[name] = table[name]
    if "severity" in changes:
        _check_severity(changes["severity"], where)
    if "window" in table:
        try:
            changes["window_s"] = parse_duration(table["window"], "window")
        except UsageError as exc:
            raise RuleError(f"{where}: {exc}") from None
    for name, kind in (("threshold", (int, float)), ("min_count", (int,)), ("enabled", (bool,))):
        if name in table:
            value = table[name]
            if not isinstance(value, kind) or (name != "enabled" and (isinstance(value, bool) or value < 0)):
                raise RuleError(f"{where}: `{name}` must be a {'boolean' if name == 'enabled' else 'number >= 0'}")
            changes[name] = value
    if "facets" in table:
        facets = table["facets"]
        if not isinstance(facets, dict):
            raise RuleError(f"{where}: `facets` must be a table of facet = \"SEVn\"")
        for severity in facets.values():
            _check_severity(severity, where)
        changes["facets"] = dict(facets)
    if "escalate" in table:
        escalate = table["escalate"]
        if not isinstance(escalate, dict) or not all(isinstance(v, int | float) and not isinstance(v, bool)
                                                     for v in escalate.values()):
            raise RuleError(f"{where}: `escalate` must be a table of SEVn = number (the value that raises it)")
        for severity in escalate:
            _check_severity(severity, where)
        changes["escalate"] = dict(sorted(escalate.items(), key=lambda item: -rank(item[0])))
    return replace(base, **changes)


def _check_severity(value: Any, where: str) -> None:
    if value not in SEVERITIES:
        raise RuleError(f"{where}: severity {value!r} is not one of {', '.join(SEVERITIES)}")
