"""`aigentflow gdpr export`: every record naming a subject, in one zip archive with a manifest."""

from __future__ import annotations

import json
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aigentflow.gdpr import requests
from aigentflow.gdpr.search import Findings, search
from aigentflow.gdpr.subject import Subject, gdpr_dir
from aigentflow.project.paths import ProjectPaths

USER_HISTORY_NOTE = ("commits, trees or files of the user's own git history (branches and tags other than "
                     "aigentflow/*): reported here, never rewritten by aigentflow")


@dataclass
class ExportResult:
    request: requests.DsarRecord
    archive: Path
    findings: Findings
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {"request": self.request.to_dict(), "archive": str(self.archive), "seconds": round(self.seconds, 3),
                "counts": self.findings.counts(), "hits": len(self.findings.hits),
                "user_history": len(self.findings.user_history)}


def default_archive(paths: ProjectPaths, request_id: str, subject: Subject) -> Path:
    """Under ``.aigentflow/gdpr/exports/``, named by request and subject hash (an erase deletes them)."""
    return gdpr_dir(paths.state_dir) / "exports" / f"{request_id}-{subject.hash8}.zip"


def export(paths: ProjectPaths, subject: Subject, output: Path | None = None, tenant_id: str = "default"
           ) -> ExportResult:
    started = time.monotonic()
    request = requests.open_request(paths.database, subject.hash, "export", tenant_id)
    findings = search(paths, subject)
    archive = Path(output) if output else default_archive(paths, request.id, subject)
    archive.parent.mkdir(parents=True, exist_ok=True)
    manifest = {
        "request": request.id, "subject_hash": subject.hash, "generated_at": requests.now_iso(),
        "project": str(paths.root), "counts": findings.counts(),
        "hits": [h.to_dict(with_record=False) for h in findings.hits],
        "user_history": [h.to_dict(with_record=False) for h in findings.user_history],
        "user_history_note": USER_HISTORY_NOTE,
    }
    temporary = archive.with_name(f".{archive.name}.tmp")
    with zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr("manifest.json", json.dumps(manifest, indent=2, default=str))
        by_location: dict[str, list[dict[str, Any]]] = {}
        for hit in [*findings.hits, *findings.user_history]:
            by_location.setdefault(hit.location, []).append(hit.to_dict())
        for location, hits in sorted(by_location.items()):
            bundle.writestr(f"records/{location}.json", json.dumps(hits, indent=2, default=str))
    temporary.replace(archive)
    done = requests.complete_request(paths.database, request.id, {"counts": findings.counts(),
                                                                  "user_history": len(findings.user_history)})
    return ExportResult(done, archive, findings, time.monotonic() - started)
