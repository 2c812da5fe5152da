"""What both run stores share: run ids, timestamps, and turning a table row (SQLite's, or the in-memory
twin's copy of one) into a record."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

from aigentflow.store.records import RunRecord, StepRecord


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def new_run_id() -> str:
    """Sortable and short: ``YYMMDD-HHMMSS-xxxx``; commands accept any unique prefix."""
    import secrets

    return time.strftime("%y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(2)


def run_from_row(row: Any) -> RunRecord:
    return RunRecord(
        id=row["id"], tenant_id=row["tenant_id"], project_id=row["project_id"], request=row["request"],
        model=row["model"], state=row["state"], return_to=row["return_to"], version=row["version"],
        created_at=row["created_at"], updated_at=row["updated_at"], finished_at=row["finished_at"],
        error=row["error"], settings=json.loads(row["settings_json"]), flags=json.loads(row["flags_json"]),
        owner_pid=row["owner_pid"], owner_host=row["owner_host"], heartbeat_at=row["heartbeat_at"],
        pause_requested=bool(row["pause_requested"]), model_calls=row["model_calls"],
    )


def step_from_row(row: Any) -> StepRecord:
    return StepRecord(
        run_id=row["run_id"], step=row["step"], attempt=row["attempt"], role=row["role"], state=row["state"],
        status=row["status"], output=json.loads(row["output_json"]) if row["output_json"] else None,
        error=row["error"], started_at=row["started_at"], finished_at=row["finished_at"],
        input_tokens=row["input_tokens"], output_tokens=row["output_tokens"], cost_usd=row["cost_usd"],
        model_calls=row["model_calls"], prompt_hashes=json.loads(row["prompt_hashes_json"]),
    )
