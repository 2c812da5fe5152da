"""The run store on SQLite: WAL mode, synchronous=FULL, explicit write transactions.

Only the process that owns a run writes its rows; ``status`` and friends only read. Every write
that moves a run is a compare-and-set on ``runs.version``, so two processes that both believe they
own a run cannot both move it.
"""

from __future__ import annotations

# ``secrets`` and ``socket`` are imported by the writes that use them: `aigentflow status` only reads.
import json
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from aigentflow.exceptions import StoreError, UnknownRun
from aigentflow.store.migrations import LATEST_VERSION, MIGRATIONS
from aigentflow.store.records import (
    ArtifactRecord,
    RunRecord,
    StepRecord,
    StepUsage,
    TransitionRecord,
    dumps,
)
from aigentflow.store.rows import new_run_id, now_iso, run_from_row, step_from_row
from aigentflow.store.sqlite_ledger import LedgerTables
from aigentflow.store.sqlite_tenants import TenantTables

BUSY_TIMEOUT_MS = 5000
_OF_TENANT = " AND tenant_id=?"
"""Appended to a read by run id when it is scoped to one tenant (``aigentflow.tenants.scope``)."""


class StaleRun(StoreError):
    """The run moved under us (another process changed it): nothing was written."""


class SQLiteRunStore(LedgerTables, TenantTables):
    """The run store. ``SQLiteRunStore(path)`` opens (and migrates, if ``create``) the database;
    ``with SQLiteRunStore(path) as store:`` closes it on the way out. It implements ``RunStore``
    (``protocol.py``), whose contract it defines. One connection per instance: a thread that writes
    concurrently with others opens its own."""

    def __init__(self, path: Path | str, *, create: bool = False, readonly: bool = False) -> None:
        self.path = Path(path)
        if not create and not self.path.exists():
            raise StoreError(f"no state database at {self.path}; run `aigentflow init` first.")
        self._readonly = readonly
        try:
            self._conn = sqlite3.connect(
                self.path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000, check_same_thread=False
            )
            self._conn.row_factory = sqlite3.Row
            self._conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            self._conn.execute("PRAGMA foreign_keys=ON")
            if not readonly:
                self._conn.execute("PRAGMA journal_mode=WAL")
                self._conn.execute("PRAGMA synchronous=FULL")
            version = self._user_version()
        except sqlite3.DatabaseError as exc:
            raise self._explain(exc) from None
        if version > LATEST_VERSION:
            raise StoreError(
                f"{self.path} has schema version {version}, newer than this aigentflow knows "
                f"({LATEST_VERSION}); upgrade aigentflow."
            )
        if version < LATEST_VERSION:
            if readonly:
                raise StoreError(f"{self.path} needs a schema upgrade; "
                                 "run any writing command (e.g. `aigentflow init`).")
            self.migrate()

    # -- plumbing -------------------------------------------------------------------------------

    def _explain(self, exc: sqlite3.Error) -> StoreError:
        text = str(exc)
        if "locked" in text or "busy" in text:
            return StoreError(
                f"the state database {self.path} is locked by another process ({text}); wait for it "
                "to finish or stop it, then retry. Nothing was changed."
            )
        if "not a database" in text or "malformed" in text or "corrupt" in text:
            return StoreError(
                f"the state database {self.path} is corrupted ({text}). Move it aside (keep it for "
                "recovery) and run `aigentflow init` to start a fresh one."
            )
        return StoreError(f"state database {self.path}: {text}")

    def _user_version(self) -> int:
        return int(self._conn.execute("PRAGMA user_version").fetchone()[0])

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        if self._readonly:
            raise StoreError("this store was opened read-only")
        try:
            self._conn.execute("BEGIN IMMEDIATE")
        except sqlite3.Error as exc:
            raise self._explain(exc) from None
        try:
            yield self._conn
        except sqlite3.IntegrityError as exc:  # e.g. a run for a project that does not exist
            self._conn.execute("ROLLBACK")
            raise StoreError(f"state database {self.path}: {exc}; nothing was written") from None
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        else:
            try:
                self._conn.execute("COMMIT")
            except sqlite3.Error as exc:
                self._conn.execute("ROLLBACK")
                raise self._explain(exc) from None

    def _query(self, sql: str, params: tuple[Any, ...] = ()) -> list[sqlite3.Row]:
        try:
            return self._conn.execute(sql, params).fetchall()
        except sqlite3.DatabaseError as exc:
            raise self._explain(exc) from None

    @contextmanager
    def snapshot(self) -> Iterator[None]:
        """Reads inside see one state of the database (a read transaction): rows another process commits
        meanwhile are all seen by the next snapshot, none by this one (``ProgressWatcher`` reads steps,
        audit and transitions together so)."""
        try:
            self._conn.execute("BEGIN")
        except sqlite3.Error as exc:
            raise self._explain(exc) from None
        try:
            yield
        finally:
            self._conn.execute("COMMIT")

    def migrate(self) -> int:
        """Apply the migrations this database lacks; returns the schema version."""
        with self._write() as conn:
            version = self._user_version()
            for index in range(version, LATEST_VERSION):
                for statement in _split_statements(MIGRATIONS[index]):
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version={index + 1}")
        return LATEST_VERSION

    def schema_version(self) -> int:
        return self._user_version()

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    # -- projects -------------------------------------------------------------------------------

    def upsert_project(self, name: str, facts: dict[str, Any], tenant_id: str = "default") -> str:
        """Record (or refresh) the project's facts; a database holds one project."""
        import secrets

        stamp = now_iso()
        with self._write() as conn:
            row = conn.execute("SELECT id FROM projects LIMIT 1").fetchone()
            if row:
                conn.execute(
                    "UPDATE projects SET name=?, facts_json=?, updated_at=? WHERE id=?",
                    (name, dumps(facts), stamp, row["id"]),
                )
                return str(row["id"])
            project_id = "p-" + secrets.token_hex(4)
            conn.execute(
                "INSERT INTO projects VALUES (?,?,?,?,?,?)",
                (project_id, tenant_id, name, dumps(facts), stamp, stamp),
            )
            return project_id

    def get_project(self) -> dict[str, Any] | None:
        rows = self._query("SELECT * FROM projects LIMIT 1")
        if not rows:
            return None
        row = dict(rows[0])
        row["facts"] = json.loads(row.pop("facts_json"))
        return row

    # -- runs -----------------------------------------------------------------------------------

    def create_run(
        self,
        *,
        project_id: str,
        request: str,
        model: str,
        settings: dict[str, Any],
        flags: dict[str, Any],
        tenant_id: str = "default",
        run_id: str | None = None,
    ) -> RunRecord:
        run_id = run_id or new_run_id()
        stamp = now_iso()
        with self._write() as conn:
            conn.execute(
                "INSERT INTO runs (id, tenant_id, project_id, request, model, state, version, created_at,"
                " updated_at, settings_json, flags_json) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                (run_id, tenant_id, project_id, request, model, "CREATED", 0, stamp, stamp,
                 dumps(settings), dumps(flags)),
            )
            conn.execute(
                "INSERT INTO transitions (tenant_id, run_id, from_state, to_state, event, reason, at)"
                " VALUES (?,?,?,?,?,?,?)",
                (tenant_id, run_id, None, "CREATED", "CREATE", None, stamp),
            )
        return self.get_run(run_id)

    def get_run(self, run_id: str, tenant_id: str | None = None) -> RunRecord:
        rows = self._query("SELECT * FROM runs WHERE id=?" + _OF_TENANT * bool(tenant_id), _with(run_id, tenant_id))
        if not rows:
            raise UnknownRun(f"no run {run_id!r} in this project; `aigentflow runs` lists them.")
        return run_from_row(rows[0])

    def resolve_run_id(self, prefix: str) -> str:
        """The full id of the run whose id starts with ``prefix`` (it must be unique)."""
        escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        rows = self._query("SELECT id FROM runs WHERE id LIKE ? ESCAPE '\\' ORDER BY id", (escaped + "%",))
        if not rows:
            raise UnknownRun(f"no run matches {prefix!r}; `aigentflow runs` lists the runs of this project.")
        if len(rows) > 1 and rows[0]["id"] != prefix:
            ids = ", ".join(r["id"] for r in rows[:5])
            raise UnknownRun(f"{prefix!r} matches several runs ({ids}); give more of the id.")
        return str(rows[0]["id"])

    def list_runs(self, limit: int = 50, tenant_id: str | None = None) -> list[RunRecord]:
        if tenant_id:
            rows = self._query(
                "SELECT * FROM runs WHERE tenant_id=? ORDER BY created_at DESC, id DESC LIMIT ?", (tenant_id, limit)
            )
        else:
            rows = self._query("SELECT * FROM runs ORDER BY created_at DESC, id DESC LIMIT ?", (limit,))
        return [run_from_row(r) for r in rows]

    def transition(
        self,
        run_id: str,
        *,
        expected_version: int,
        to_state: str,
        return_to: str | None,
        event: str,
        reason: str | None = None,
        error: str | None = None,
        terminal: bool = False,
    ) -> RunRecord:
        """Move the run (compare-and-set on ``version``) and append to its transition log."""
        with self._write() as conn:
            self._move(conn, run_id, expected_version, to_state, return_to, event, reason, error, terminal)
        return self.get_run(run_id)

    def _move(
        self,
        conn: sqlite3.Connection,
        run_id: str,
        expected_version: int,
        to_state: str,
        return_to: str | None,
        event: str,
        reason: str | None,
        error: str | None,
        terminal: bool,
    ) -> None:
        row = conn.execute("SELECT state, version, tenant_id FROM runs WHERE id=?", (run_id,)).fetchone()
        if row is None:
            raise UnknownRun(f"no run {run_id!r}")
        if row["version"] != expected_version:
            raise StaleRun(
                f"run {run_id} changed underneath (version {row['version']}, expected {expected_version}); "
                "another process is driving it."
            )
        stamp = now_iso()
        conn.execute(
            "UPDATE runs SET state=?, return_to=?, version=version+1, updated_at=?, error=COALESCE(?, error),"
            " finished_at=CASE WHEN ? THEN ? ELSE finished_at END,"
            " pause_requested=CASE WHEN ?='PAUSED' THEN 0 ELSE pause_requested END WHERE id=?",
            (to_state, return_to, stamp, error, 1 if terminal else 0, stamp, to_state, run_id),
        )
        conn.execute(
            "INSERT INTO transitions (tenant_id, run_id, from_state, to_state, event, reason, at) "
            "VALUES (?,?,?,?,?,?,?)",
            (row["tenant_id"], run_id, row["state"], to_state, event, reason, stamp),
        )

    def transitions(self, run_id: str, tenant_id: str | None = None) -> list[TransitionRecord]:
        rows = self._query("SELECT * FROM transitions WHERE run_id=?" + _OF_TENANT * bool(tenant_id) + " ORDER BY seq",
                           _with(run_id, tenant_id))
        return [
            TransitionRecord(r["seq"], r["run_id"], r["from_state"], r["to_state"], r["event"], r["reason"], r["at"])
            for r in rows
        ]

    def request_pause(self, run_id: str) -> None:
        with self._write() as conn:
            conn.execute("UPDATE runs SET pause_requested=1 WHERE id=?", (run_id,))

    def clear_pause_request(self, run_id: str) -> None:
        with self._write() as conn:
            conn.execute("UPDATE runs SET pause_requested=0 WHERE id=?", (run_id,))

    def claim(self, run_id: str, pid: int | None = None, host: str | None = None) -> None:
        """Record which process drives the run now (its heartbeat shows it is alive)."""
        import socket

        with self._write() as conn:
            conn.execute(
                "UPDATE runs SET owner_pid=?, owner_host=?, heartbeat_at=? WHERE id=?",
                (pid or os.getpid(), host or socket.gethostname(), now_iso(), run_id),
            )

    def release(self, run_id: str) -> None:
        with self._write() as conn:
            conn.execute("UPDATE runs SET owner_pid=NULL, owner_host=NULL WHERE id=?", (run_id,))

    def add_model_calls(self, run_id: str, count: int) -> int:
        with self._write() as conn:
            conn.execute("UPDATE runs SET model_calls=model_calls+? WHERE id=?", (count, run_id))
            row = conn.execute("SELECT model_calls FROM runs WHERE id=?", (run_id,)).fetchone()
            if row is None:
                raise UnknownRun(f"no run {run_id!r} in this project; `aigentflow runs` lists them.")
            return int(row[0])

    # -- steps ----------------------------------------------------------------------------------

    def begin_step(self, run_id: str, step: str, role: str, state: str, *, new_attempt: bool = False) -> StepRecord:
        """The step's record to work on: a completed one is returned as is (never redone); an
        interrupted one is retried under the same key; otherwise attempt 1 (or the next after a
        failure when ``new_attempt``) is started."""
        with self._write() as conn:
            rows = conn.execute(
                "SELECT * FROM steps WHERE run_id=? AND step=? ORDER BY attempt", (run_id, step)
            ).fetchall()
            for row in rows:
                if row["status"] == "completed":
                    return step_from_row(row)
            if rows and rows[-1]["status"] == "started":
                return step_from_row(rows[-1])
            if rows and not new_attempt:
                return step_from_row(rows[-1])
            attempt = (rows[-1]["attempt"] + 1) if rows else 1
            owner = conn.execute("SELECT tenant_id FROM runs WHERE id=?", (run_id,)).fetchone()
            if owner is None:
                raise UnknownRun(f"no run {run_id!r}")
            tenant = owner["tenant_id"]
            conn.execute(
                "INSERT INTO steps (run_id, step, attempt, tenant_id, role, state, status, started_at)"
                " VALUES (?,?,?,?,?,?,?,?)",
                (run_id, step, attempt, tenant, role, state, "started", now_iso()),
            )
            row = conn.execute(
                "SELECT * FROM steps WHERE run_id=? AND step=? AND attempt=?", (run_id, step, attempt)
            ).fetchone()
            return step_from_row(row)

    def complete_step(
        self,
        step: StepRecord,
        *,
        output: dict[str, Any],
        usage: StepUsage,
        artifacts: list[ArtifactRecord],
        expected_version: int,
        to_state: str,
        return_to: str | None = None,
        event: str = "ADVANCE",
        terminal: bool = False,
    ) -> RunRecord:
        """One transaction: the step's result, its artifacts, and the run's next state."""
        stamp = now_iso()
        with self._write() as conn:
            updated = conn.execute(
                "UPDATE steps SET status='completed', output_json=?, error=NULL, finished_at=?, input_tokens=?,"
                " output_tokens=?, cost_usd=?, model_calls=?, prompt_hashes_json=?"
                " WHERE run_id=? AND step=? AND attempt=? AND status!='completed'",
                (dumps(output), stamp, usage.input_tokens, usage.output_tokens, usage.cost_usd,
                 usage.model_calls, dumps(usage.prompt_hashes), *step.key),
            ).rowcount
            if updated != 1:
                raise StaleRun(f"step {step.key} is already completed; nothing was written twice.")
            tenant = conn.execute("SELECT tenant_id FROM runs WHERE id=?", (step.run_id,)).fetchone()["tenant_id"]
            _write_model_usage(conn, step, tenant, usage)
            for art in artifacts:
                conn.execute(
                    "INSERT INTO artifacts VALUES (?,?,?,?,?,?,?,?) ON CONFLICT(run_id, name) DO UPDATE SET"
                    " step=excluded.step, path=excluded.path, sha256=excluded.sha256, bytes=excluded.bytes,"
                    " created_at=excluded.created_at",
                    (art.run_id, tenant, art.step, art.name, art.path, art.sha256, art.bytes, stamp),
                )
            self._move(conn, step.run_id, expected_version, to_state, return_to, event, None, None, terminal)
        return self.get_run(step.run_id)

    def fail_step(self, step: StepRecord, error: str, usage: StepUsage | None = None) -> None:
        usage = usage or StepUsage()
        with self._write() as conn:
            failed = conn.execute(
                "UPDATE steps SET status='failed', error=?, finished_at=?, input_tokens=?, output_tokens=?,"
                " cost_usd=?, model_calls=?, prompt_hashes_json=? WHERE run_id=? AND step=? AND attempt=?"
                " AND status!='completed'",
                (error, now_iso(), usage.input_tokens, usage.output_tokens, usage.cost_usd, usage.model_calls,
                 dumps(usage.prompt_hashes), *step.key),
            ).rowcount
            if failed == 1:
                tenant = conn.execute("SELECT tenant_id FROM steps WHERE run_id=? AND step=? AND attempt=?",
                                      step.key).fetchone()["tenant_id"]
                _write_model_usage(conn, step, tenant, usage)

    def steps(self, run_id: str, tenant_id: str | None = None) -> list[StepRecord]:
        rows = self._query("SELECT * FROM steps WHERE run_id=?" + _OF_TENANT * bool(tenant_id)
                           + " ORDER BY started_at, step, attempt", _with(run_id, tenant_id))
        return [step_from_row(r) for r in rows]

    def artifacts(self, run_id: str, tenant_id: str | None = None) -> list[ArtifactRecord]:
        rows = self._query("SELECT * FROM artifacts WHERE run_id=?" + _OF_TENANT * bool(tenant_id)
                           + " ORDER BY created_at, name", _with(run_id, tenant_id))
        return [
            ArtifactRecord(r["run_id"], r["step"], r["name"], r["path"], r["sha256"], r["bytes"], r["created_at"])
            for r in rows
        ]


def _with(run_id: str, tenant_id: str | None) -> tuple[str, ...]:
    return (run_id, tenant_id) if tenant_id else (run_id,)


def _write_model_usage(conn: sqlite3.Connection, step: StepRecord, tenant: str, usage: StepUsage) -> None:
    conn.execute("DELETE FROM model_usage WHERE run_id=? AND step=? AND attempt=?", step.key)
    for part in usage.by_model:
        conn.execute("INSERT INTO model_usage VALUES (?,?,?,?,?,?,?,?,?,?) ON CONFLICT(run_id, step, attempt, model) "
                     "DO UPDATE SET calls=calls+excluded.calls, input_tokens=input_tokens+excluded.input_tokens, "
                     "output_tokens=output_tokens+excluded.output_tokens, cost_usd=cost_usd+excluded.cost_usd",
                     (*step.key, tenant, part.model, part.provider, part.calls, part.input_tokens,
                      part.output_tokens, float(part.cost_usd)))


def _split_statements(script: str) -> list[str]:
    """Split a migration into statements, keeping trigger bodies (``BEGIN ... END;``) whole."""
    statements: list[str] = []
    current: list[str] = []
    for line in script.strip().splitlines():
        current.append(line)
        candidate = "\n".join(current).strip()
        if candidate.endswith(";") and sqlite3.complete_statement(candidate):
            statements.append(candidate)
            current = []
    if "\n".join(current).strip():
        statements.append("\n".join(current).strip())
    return statements
