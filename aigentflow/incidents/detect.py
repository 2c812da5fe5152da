"""``detect``: every enabled rule over the project, findings recorded as incidents, then alerts routed.

Idempotent: an incident is opened or re-detected only by evidence not seen before under its key, so
running it again on an unchanged project changes nothing. A detector that breaks is reported in the
result (``errors``) and the others still run."""

from __future__ import annotations

import sqlite3
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from aigentflow.incidents.alerting import dispatch
from aigentflow.incidents.config import IncidentSettings, load_settings
from aigentflow.incidents.detectors import DETECTORS, Context
from aigentflow.incidents.rules import load_rules
from aigentflow.incidents.store import IncidentStore
from aigentflow.redact import Redactor


def detect(project_root: Path, *, alert: bool = True, settings: IncidentSettings | None = None,
           kinds: tuple[str, ...] | None = None) -> dict[str, Any]:
    """Run the rules (only those of ``kinds``, if given: a quota refusal records its incident at once this
    way); what was found, recorded and sent (JSON-able)."""
    from aigentflow.project.paths import ProjectPaths

    started = time.perf_counter()
    paths = ProjectPaths(Path(project_root))
    rules = [r for r in load_rules(paths.state_dir) if kinds is None or r.kind in kinds]
    settings = settings if settings is not None else load_settings(paths.root)
    redactor = Redactor.from_environment(extra_values=[s for r in settings.routes for s in r.secrets()])
    report: dict[str, Any] = {"rules": [r.id for r in rules], "findings": 0, "opened": [], "redetected": [],
                              "escalated": [], "deliveries": [], "errors": []}
    with IncidentStore(paths.database, redactor) as store:
        reader = sqlite3.connect(f"file:{paths.database}?mode=ro", uri=True, timeout=5)
        reader.row_factory = sqlite3.Row
        changed = {}
        try:
            context = Context(reader, paths.state_dir, redactor)
            for rule in rules:
                try:
                    findings = DETECTORS[rule.kind](rule, context)
                except Exception as exc:  # noqa: BLE001 - one broken source must not hide the others' incidents
                    report["errors"].append(f"{rule.id}: {type(exc).__name__}: {redactor.redact_text(str(exc))}")
                    continue
                report["findings"] += len(findings)
                for finding in findings:
                    recorded = store.record(finding, rule.classify(finding))
                    if recorded is None:
                        continue
                    incident, what = recorded
                    changed[incident.id] = incident
                    key = {"detected": "opened", "re-detected": "redetected", "escalated": "escalated"}[what]
                    report[key].append(f"INC-{incident.id}")
        finally:
            reader.close()
        if alert and settings.routes:
            pending = {i.id: i for i in store.list(status="open")} | changed
            deliveries = dispatch(store, settings, [store.get(i) for i in sorted(pending)])
            report["deliveries"] = [asdict(d) for d in deliveries if d.result != "skipped"]
    report["seconds"] = round(time.perf_counter() - started, 3)
    return report
