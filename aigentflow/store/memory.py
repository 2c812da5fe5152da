"""``InMemoryRunStore``: the SQLite store's twin in memory, for tests. Same records, errors, ordering,
compare-and-set and idempotency (``tests/store_conformance.py`` holds both to it).

Rows are kept as the SQLite tables hold them (JSON columns as ``dumps`` text), so what comes back is
what SQLite would give back: fresh records, JSON-normalised (tuples become lists, unknown types
strings), never sharing state with the caller. One lock makes every call atomic across threads.
``handle()`` gives another handle on the same data, as a second ``SQLiteRunStore`` on the same file.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

from aigentflow.exceptions import StoreError, UnknownRun, UsageError
from aigentflow.store.memory_tenants import TenantTablesInMemory
from aigentflow.store.records import (
    COST_GROUPS,
    ArtifactRecord,
    AuditRecord,
    ReleaseRecord,
    RunRecord,
    StepRecord,
    StepUsage,
    TransitionRecord,
    cost_row,
    dumps,
)
from aigentflow.store.rows import new_run_id, now_iso, run_from_row, step_from_row
from aigentflow.store.sqlite import StaleRun

_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")


def _text(value: Any) -> Any:
    """A ``str`` subclass (``State``, ``Event``) as the plain text SQLite would store."""
    return str.__str__(value) if isinstance(value, str) else value


class _Tables:
    """The data every handle of one in-memory store shares."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.project: dict[str, Any] | None = None
        self.runs: dict[str, dict[str, Any]] = {}
        self.transitions: list[dict[str, Any]] = []
        self.steps: dict[tuple[str, str, int], dict[str, Any]] = {}
        self.artifacts: dict[tuple[str, str], dict[str, Any]] = {}
        self.audit: list[dict[str, Any]] = []
        self.controls: dict[tuple[str, str], str] = {}
        self.releases: list[dict[str, Any]] = []
        self.model_usage: dict[tuple[str, str, int], list[dict[str, Any]]] = {}
        self.tenants: dict[str, dict[str, Any]] = {  # as migration 7 leaves it: 'default' is always there
            "default": {"id": "default", "name": "default", "status": "active", "created_at": now_iso()}}
        self.quotas: dict[tuple[str, str, str], dict[str, Any]] = {}


class InMemoryRunStore(TenantTablesInMemory):
    """A ``RunStore`` in memory; ``handle()`` opens another handle on the same data."""

    def __init__(self, *, _tables: _Tables | None = None) -> None:
        self._tables = _tables or _Tables()
        self._closed = False

    def handle(self) -> InMemoryRunStore:
        return InMemoryRunStore(_tables=self._tables)

    def close(self) -> None:
        self._closed = True

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _locked(self, action: Callable[[_Tables], Any]) -> Any:
        if self._closed:
            raise StoreError("the in-memory store is closed: Cannot operate on a closed database.")
        with self._tables.lock:
            return action(self._tables)

    # -- projects ---------------------------------------------------------------------------------

    def upsert_project(self, name: str, facts: dict[str, Any], tenant_id: str = "default") -> str:
        def write(t: _Tables) -> str:
            stamp = now_iso()
            if t.project is not None:
                t.project.update(name=name, facts_json=dumps(facts), updated_at=stamp)
            else:
                t.project = {"id": "p-" + secrets.token_hex(4), "tenant_id": tenant_id, "name": name,
                             "facts_json": dumps(facts), "created_at": stamp, "updated_at": stamp}
            return str(t.project["id"])
        return self._locked(write)

    def get_project(self) -> dict[str, Any] | None:
        def read(t: _Tables) -> dict[str, Any] | None:
            if t.project is None:
                return None
            row = dict(t.project)
            row["facts"] = json.loads(row.pop("facts_json"))
            return row
        return self._locked(read)

    # -- runs -------------------------------------------------------------------------------------

    def create_run(self, *, project_id: str, request: str, model: str, settings: dict[str, Any],
                   flags: dict[str, Any], tenant_id: str = "default", run_id: str | None = None) -> RunRecord:
        chosen_id = run_id

        def write(t: _Tables) -> RunRecord:
            if t.project is None or t.project["id"] != project_id:
                raise StoreError(f"no project {project_id!r}: FOREIGN KEY constraint failed")
            run_id, stamp = chosen_id or new_run_id(), now_iso()
            if run_id in t.runs:
                raise StoreError(f"UNIQUE constraint failed: runs.id ({run_id})")
            t.runs[run_id] = {
                "id": run_id, "tenant_id": tenant_id, "project_id": project_id, "request": request,
                "model": model, "state": "CREATED", "return_to": None, "version": 0, "created_at": stamp,
                "updated_at": stamp, "finished_at": None, "error": None, "settings_json": dumps(settings),
                "flags_json": dumps(flags), "owner_pid": None, "owner_host": None, "heartbeat_at": None,
                "pause_requested": 0, "model_calls": 0}
            self._log(t, tenant_id, run_id, None, "CREATED", "CREATE", None, stamp)
            return run_from_row(t.runs[run_id])
        return self._locked(write)

    def get_run(self, run_id: str, tenant_id: str | None = None) -> RunRecord:
        def read(t: _Tables) -> RunRecord:
            if run_id not in t.runs or (tenant_id and t.runs[run_id]["tenant_id"] != tenant_id):
                raise UnknownRun(f"no run {run_id!r} in this project; `aigentflow runs` lists them.")
            return run_from_row(t.runs[run_id])
        return self._locked(read)

    def resolve_run_id(self, prefix: str) -> str:
        # As SQLite's LIKE: case-insensitive for ASCII letters only; matches sorted by id.
        folded = prefix.translate(_ASCII_LOWER)
        ids = sorted(i for i in self._locked(lambda t: list(t.runs)) if i.translate(_ASCII_LOWER).startswith(folded))
        if not ids:
            raise UnknownRun(f"no run matches {prefix!r}; `aigentflow runs` lists the runs of this project.")
        if len(ids) > 1 and ids[0] != prefix:
            raise UnknownRun(f"{prefix!r} matches several runs ({', '.join(ids[:5])}); give more of the id.")
        return ids[0]

    def list_runs(self, limit: int = 50, tenant_id: str | None = None) -> list[RunRecord]:
        def read(t: _Tables) -> list[RunRecord]:
            rows = [r for r in t.runs.values() if not tenant_id or r["tenant_id"] == tenant_id]
            rows.sort(key=lambda r: (r["created_at"], r["id"]), reverse=True)
            return [run_from_row(r) for r in (rows[:limit] if limit >= 0 else rows)]
        return self._locked(read)

    def transition(self, run_id: str, *, expected_version: int, to_state: str, return_to: str | None,
                   event: str, reason: str | None = None, error: str | None = None,
                   terminal: bool = False) -> RunRecord:
        def write(t: _Tables) -> RunRecord:
            self._check_version(t, run_id, expected_version)
            self._move(t, run_id, to_state, return_to, event, reason, error, terminal)
            return run_from_row(t.runs[run_id])
        return self._locked(write)

    @staticmethod
    def _check_version(t: _Tables, run_id: str, expected_version: int) -> None:
        row = t.runs.get(run_id)
        if row is None:
            raise UnknownRun(f"no run {run_id!r}")
        if row["version"] != expected_version:
            raise StaleRun(f"run {run_id} changed underneath (version {row['version']}, expected "
                           f"{expected_version}); another process is driving it.")

    def _move(self, t: _Tables, run_id: str, to_state: str, return_to: str | None, event: str,
              reason: str | None, error: str | None, terminal: bool) -> None:
        row, stamp, to_state = t.runs[run_id], now_iso(), _text(to_state)
        from_state = row["state"]
        row.update(state=to_state, return_to=_text(return_to), version=row["version"] + 1, updated_at=stamp)
        if error is not None:
            row["error"] = error
        if terminal:
            row["finished_at"] = stamp
        if to_state == "PAUSED":
            row["pause_requested"] = 0
        self._log(t, row["tenant_id"], run_id, from_state, to_state, _text(event), reason, stamp)

    @staticmethod
    def _log(t: _Tables, tenant_id: str, run_id: str, from_state: str | None, to_state: str, event: str,
             reason: str | None, at: str) -> None:
        t.transitions.append({"seq": len(t.transitions) + 1, "tenant_id": tenant_id, "run_id": run_id,
                              "from_state": from_state, "to_state": to_state, "event": event,
                              "reason": reason, "at": at})

    def transitions(self, run_id: str, tenant_id: str | None = None) -> list[TransitionRecord]:
        rows = self._locked(lambda t: [dict(r) for r in t.transitions if r["run_id"] == run_id
                                       and (not tenant_id or r["tenant_id"] == tenant_id)])
        return [TransitionRecord(r["seq"], r["run_id"], r["from_state"], r["to_state"], r["event"], r["reason"],
                                 r["at"]) for r in rows]

    def _update_run(self, run_id: str, **values: Any) -> None:
        def write(t: _Tables) -> None:
            if run_id in t.runs:  # as an UPDATE ... WHERE id=?: an unknown run changes nothing
                t.runs[run_id].update(values)
        self._locked(write)

    def request_pause(self, run_id: str) -> None:
        self._update_run(run_id, pause_requested=1)

    def clear_pause_request(self, run_id: str) -> None:
        self._update_run(run_id, pause_requested=0)

    def claim(self, run_id: str, pid: int | None = None, host: str | None = None) -> None:
        self._update_run(run_id, owner_pid=pid or os.getpid(), owner_host=host or socket.gethostname(),
                         heartbeat_at=now_iso())

    def release(self, run_id: str) -> None:
        self._update_run(run_id, owner_pid=None, owner_host=None)

    def add_model_calls(self, run_id: str, count: int) -> int:
        def write(t: _Tables) -> int:
            if run_id not in t.runs:
                raise UnknownRun(f"no run {run_id!r}")
            t.runs[run_id]["model_calls"] += count
            return int(t.runs[run_id]["model_calls"])
        return self._locked(write)

    # -- steps ------------------------------------------------------------------------------------

    def begin_step(self, run_id: str, step: str, role: str, state: str, *,
                   new_attempt: bool = False) -> StepRecord:
        def write(t: _Tables) -> StepRecord:
            rows = sorted((r for k, r in t.steps.items() if k[0] == run_id and k[1] == step),
                          key=lambda r: r["attempt"])
            for row in rows:
                if row["status"] == "completed":
                    return step_from_row(row)
            if rows and (rows[-1]["status"] == "started" or not new_attempt):
                return step_from_row(rows[-1])
            attempt = rows[-1]["attempt"] + 1 if rows else 1
            if run_id not in t.runs:
                raise UnknownRun(f"no run {run_id!r}")
            row = {"run_id": run_id, "step": step, "attempt": attempt, "tenant_id": t.runs[run_id]["tenant_id"],
                   "role": role, "state": _text(state), "status": "started", "output_json": None, "error": None,
                   "started_at": now_iso(), "finished_at": None, "input_tokens": 0, "output_tokens": 0,
                   "cost_usd": 0.0, "model_calls": 0, "prompt_hashes_json": "[]"}
            t.steps[(run_id, step, attempt)] = row
            return step_from_row(row)
        return self._locked(write)

    def complete_step(self, step: StepRecord, *, output: dict[str, Any], usage: StepUsage,
                      artifacts: list[ArtifactRecord], expected_version: int, to_state: str,
                      return_to: str | None = None, event: str = "ADVANCE", terminal: bool = False) -> RunRecord:
        def write(t: _Tables) -> RunRecord:
            row = t.steps.get(step.key)
            if row is None or row["status"] == "completed":
                raise StaleRun(f"step {step.key} is already completed; nothing was written twice.")
            self._check_version(t, step.run_id, expected_version)  # everything checked before anything written
            stamp = now_iso()
            row.update(status="completed", output_json=dumps(output), error=None, finished_at=stamp,
                       **_usage(usage))
            tenant = t.runs[step.run_id]["tenant_id"]
            t.model_usage[step.key] = _model_usage(step, tenant, usage)
            for art in artifacts:
                t.artifacts[(art.run_id, art.name)] = {
                    "run_id": art.run_id, "tenant_id": tenant, "step": art.step, "name": art.name,
                    "path": art.path, "sha256": art.sha256, "bytes": art.bytes, "created_at": stamp}
            self._move(t, step.run_id, to_state, return_to, event, None, None, terminal)
            return run_from_row(t.runs[step.run_id])
        return self._locked(write)

    def fail_step(self, step: StepRecord, error: str, usage: StepUsage | None = None) -> None:
        def write(t: _Tables) -> None:
            row = t.steps.get(step.key)
            if row is not None and row["status"] != "completed":
                row.update(status="failed", error=error, finished_at=now_iso(), **_usage(usage or StepUsage()))
                t.model_usage[step.key] = _model_usage(step, row["tenant_id"], usage or StepUsage())
        self._locked(write)

    def steps(self, run_id: str, tenant_id: str | None = None) -> list[StepRecord]:
        def read(t: _Tables) -> list[StepRecord]:
            rows = [r for r in t.steps.values() if r["run_id"] == run_id
                    and (not tenant_id or r["tenant_id"] == tenant_id)]
            rows.sort(key=lambda r: (r["started_at"], r["step"], r["attempt"]))
            return [step_from_row(r) for r in rows]
        return self._locked(read)

    def artifacts(self, run_id: str, tenant_id: str | None = None) -> list[ArtifactRecord]:
        rows = self._locked(lambda t: [dict(r) for r in t.artifacts.values() if r["run_id"] == run_id
                                       and (not tenant_id or r["tenant_id"] == tenant_id)])
        rows.sort(key=lambda r: (r["created_at"], r["name"]))
        return [ArtifactRecord(r["run_id"], r["step"], r["name"], r["path"], r["sha256"], r["bytes"], r["created_at"])
                for r in rows]

    # -- audit and controls -----------------------------------------------------------------------

    def append_audit(self, event: str, run_id: str | None, data: dict[str, Any], *, at: str | None = None,
                     tenant_id: str = "default") -> None:
        def write(t: _Tables) -> None:
            t.audit.append({"seq": len(t.audit) + 1, "tenant_id": tenant_id, "run_id": run_id, "event": _text(event),
                            "at": at or now_iso(), "data_json": dumps(data)})
        self._locked(write)

    def audit(self, run_id: str | None = None, tenant_id: str | None = None) -> list[AuditRecord]:
        rows = self._locked(lambda t: [dict(r) for r in t.audit if (not run_id or r["run_id"] == run_id)
                                       and (not tenant_id or r["tenant_id"] == tenant_id)])
        return [AuditRecord(r["seq"], r["tenant_id"], r["run_id"], r["event"], r["at"], json.loads(r["data_json"]))
                for r in rows]

    def set_control(self, key: str, value: Any, tenant_id: str = "default") -> None:
        self._locked(lambda t: t.controls.__setitem__((tenant_id, key), dumps(value)))

    def get_control(self, key: str, default: Any = None, tenant_id: str = "default") -> Any:
        value = self._locked(lambda t: t.controls.get((tenant_id, key)))
        return json.loads(value) if value is not None else default

    # -- releases ---------------------------------------------------------------------------------

    def record_release(self, *, project_id: str, version: str, tag: str, commit_sha: str, changelog: str,
                       run_ids: list[str], tenant_id: str = "default") -> ReleaseRecord:
        def write(t: _Tables) -> None:
            if any(r["tag"] == tag for r in t.releases):
                return  # ON CONFLICT(tag) DO NOTHING
            if t.project is None or t.project["id"] != project_id:
                raise StoreError(f"no project {project_id!r}: FOREIGN KEY constraint failed")
            t.releases.append({"id": "rel-" + secrets.token_hex(4), "tenant_id": tenant_id, "project_id": project_id,
                               "version": version, "tag": tag, "commit_sha": commit_sha, "changelog": changelog,
                               "run_ids_json": dumps(sorted(run_ids)), "created_at": now_iso()})
        self._locked(write)
        return next(r for r in self.releases() if r.tag == tag)

    def releases(self, tenant_id: str | None = None) -> list[ReleaseRecord]:
        def read(t: _Tables) -> list[dict[str, Any]]:
            rows = [(rowid, r) for rowid, r in enumerate(t.releases) if not tenant_id or r["tenant_id"] == tenant_id]
            rows.sort(key=lambda pair: (pair[1]["created_at"], pair[0]), reverse=True)
            return [dict(r) for _, r in rows]
        return [ReleaseRecord(r["id"], r["tenant_id"], r["project_id"], r["version"], r["tag"], r["commit_sha"],
                              r["changelog"], json.loads(r["run_ids_json"]), r["created_at"])
                for r in self._locked(read)]


    def costs(self, by: str = "run", *, tenant_id: str | None = None,
              run_id: str | None = None) -> list[dict[str, Any]]:
        if by not in COST_GROUPS:
            raise UsageError(f"costs can be grouped by {', '.join(COST_GROUPS)}, not {by!r}")

        def read(t: _Tables) -> list[dict[str, Any]]:
            if by == "model":
                rows = [dict(r, model_calls=r["calls"]) for parts in t.model_usage.values() for r in parts]
            else:
                rows = sorted((dict(r) for r in t.steps.values()), key=lambda r: (r["started_at"], r["step"]))
            rows = [r for r in rows if (not tenant_id or r["tenant_id"] == tenant_id)
                    and (not run_id or r["run_id"] == run_id)]
            keys = {"run": ("run_id", "tenant_id"), "tenant": ("tenant_id",), "step": ("run_id", "step"),
                    "model": ("model", "provider")}[by]
            groups: dict[tuple[Any, ...], dict[str, Any]] = {}
            for r in rows:
                group = groups.setdefault(tuple(r[k] for k in keys), {
                    **{k: r[k] for k in keys}, **({"runs": set()} if by == "tenant" else {}),
                    "model_calls": 0, "input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0})
                for field_name in ("model_calls", "input_tokens", "output_tokens", "cost_usd"):
                    group[field_name] += r[field_name]
                if by == "tenant":
                    group["runs"].add(r["run_id"])
            found = list(groups.values())
            for group in found:
                if by == "tenant":
                    group["runs"] = len(group["runs"])
            return sorted(found, key=lambda g: tuple(g[k] for k in keys)) if by in ("tenant", "model") else found
        return [cost_row(r) for r in self._locked(read)]


def _model_usage(step: StepRecord, tenant: str, usage: StepUsage) -> list[dict[str, Any]]:
    merged: dict[str, dict[str, Any]] = {}
    for part in usage.by_model:
        row = merged.setdefault(part.model, {"run_id": step.run_id, "step": step.step, "attempt": step.attempt,
                                             "tenant_id": tenant, "model": part.model, "provider": part.provider,
                                             "calls": 0, "input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0})
        row["calls"] += part.calls
        row["input_tokens"] += part.input_tokens
        row["output_tokens"] += part.output_tokens
        row["cost_usd"] += float(part.cost_usd)
    return list(merged.values())


def _usage(usage: StepUsage) -> dict[str, Any]:
    return {"input_tokens": usage.input_tokens, "output_tokens": usage.output_tokens, "cost_usd": float(usage.cost_usd),
            "model_calls": usage.model_calls, "prompt_hashes_json": dumps(usage.prompt_hashes)}
