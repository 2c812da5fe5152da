"""Bearer tokens of the HTTP API (``aigentflow serve``), in the ``api_tokens`` table of the state database.

A token is ``agf_<id>_<secret>``: ``id`` (8 hex digits) names its row, ``secret`` is
``secrets.token_urlsafe(32)`` (256 random bits). It is shown once, when it is created; the database keeps
only the sha256 of the whole token. A plain sha256 is enough here, and a slow password hash would add
nothing: slow hashes protect guessable secrets (passwords), and no one can search 2**256 secrets, so a
stolen table gives no usable token. Checking a presented token reads the row its id names and compares
the hashes with ``hmac.compare_digest`` (constant time); a token whose id names no row is compared with a
dummy hash all the same, so a wrong id and a wrong secret take the same time and look the same.

Creating and revoking a token are audited under its tenant (``token.created``, ``token.revoked``, with the
token's id and name: never the token, never its hash).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aigentflow.exceptions import UsageError
from aigentflow.store.rows import now_iso
from aigentflow.store.sqlite import BUSY_TIMEOUT_MS, SQLiteRunStore
from aigentflow.tenants.registry import check_id

PREFIX = "agf_"
"""How a token begins: recognisable in a leaked file or a secret scanner's rules."""
TOKEN_PATTERN = re.compile(r"agf_([0-9a-f]{8})_([A-Za-z0-9_-]{43})")
MAX_NAME_CHARS = 100
LAST_USED_EVERY = timedelta(seconds=60)
"""``last_used_at`` is refreshed at most this often: a busy client must not write the database per request."""
_DUMMY_HASH = hashlib.sha256(b"no such token").hexdigest()


class UnknownToken(UsageError):
    """No API token has that id."""


@dataclass(frozen=True)
class TokenRecord:
    """An API token as stored: everything but the token itself (the hash is not shown either)."""

    id: str
    tenant_id: str
    name: str
    created_at: str
    revoked_at: str | None
    last_used_at: str | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "active": self.active}


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _record(row: sqlite3.Row) -> TokenRecord:
    return TokenRecord(row["id"], row["tenant_id"], row["name"], row["created_at"], row["revoked_at"],
                       row["last_used_at"])


class TokenStore:
    """The ``api_tokens`` table of the state database at ``path`` (migrated on open, as the run store is).
    One connection per instance (the API opens one per request)."""

    def __init__(self, path: Path | str, *, migrate: bool = True) -> None:
        if migrate:  # says clearly when there is no database; applies migrations (the server did at its start)
            SQLiteRunStore(path).close()
        self.path = Path(path)
        self._conn = sqlite3.connect(self.path, isolation_level=None, timeout=BUSY_TIMEOUT_MS / 1000,
                                     check_same_thread=False)
        self._conn.row_factory = sqlite3.Row
        self._conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> TokenStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    def _audit(self, conn: sqlite3.Connection, event: str, token: TokenRecord) -> None:
        from aigentflow.store.records import dumps

        conn.execute("INSERT INTO audit (tenant_id, run_id, event, at, data_json) VALUES (?,?,?,?,?)",
                     (token.tenant_id, None, event, now_iso(), dumps({"token_id": token.id, "name": token.name})))

    def create(self, tenant_id: str, name: str = "") -> tuple[TokenRecord, str]:
        """A new token for ``tenant_id``: its record and the token itself, which is never shown again."""
        check_id(tenant_id)
        if len(name) > MAX_NAME_CHARS:
            raise UsageError(f"--name is {len(name)} characters; keep it under {MAX_NAME_CHARS}.")
        with self._write() as conn:
            if conn.execute("SELECT 1 FROM tenants WHERE id=?", (tenant_id,)).fetchone() is None:
                raise UsageError(f"no tenant {tenant_id!r} is registered in this project; register it with "
                                 f"`aigentflow tenants create {tenant_id}` first")
            while True:
                token_id = secrets.token_hex(4)
                if conn.execute("SELECT 1 FROM api_tokens WHERE id=?", (token_id,)).fetchone() is None:
                    break
            token = f"{PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
            record = TokenRecord(token_id, tenant_id, name, now_iso(), None, None)
            conn.execute("INSERT INTO api_tokens (id, tenant_id, name, hash, created_at) VALUES (?,?,?,?,?)",
                         (token_id, tenant_id, name, hash_token(token), record.created_at))
            self._audit(conn, "token.created", record)
        return record, token

    def list(self, tenant_id: str | None = None) -> list[TokenRecord]:
        """The tokens (of ``tenant_id``, or all), oldest first."""
        if tenant_id:
            rows = self._conn.execute("SELECT * FROM api_tokens WHERE tenant_id=? ORDER BY created_at, id",
                                      (tenant_id,)).fetchall()
        else:
            rows = self._conn.execute("SELECT * FROM api_tokens ORDER BY created_at, id").fetchall()
        return [_record(r) for r in rows]

    def get(self, token_id: str) -> TokenRecord:
        row = self._conn.execute("SELECT * FROM api_tokens WHERE id=?", (token_id,)).fetchone()
        if row is None:
            raise UnknownToken(f"no API token {token_id!r}; `aigentflow tokens list` shows their ids.")
        return _record(row)

    def revoke(self, token_id: str) -> tuple[TokenRecord, bool]:
        """Revoke the token (from now on it gets 401); (its record, whether this call revoked it: False if it
        was revoked already, which changes nothing)."""
        with self._write() as conn:
            row = conn.execute("SELECT * FROM api_tokens WHERE id=?", (token_id,)).fetchone()
            if row is None:
                raise UnknownToken(f"no API token {token_id!r}; `aigentflow tokens list` shows their ids.")
            if row["revoked_at"] is not None:
                return _record(row), False
            conn.execute("UPDATE api_tokens SET revoked_at=? WHERE id=?", (now_iso(), token_id))
            record = _record(conn.execute("SELECT * FROM api_tokens WHERE id=?", (token_id,)).fetchone())
            self._audit(conn, "token.revoked", record)
        return record, True

    def authenticate(self, presented: str) -> TokenRecord | None:
        """The active token ``presented`` is, or None (malformed, unknown, wrong secret or revoked: the
        caller cannot tell which). Refreshes its ``last_used_at`` (at most once a minute)."""
        match = TOKEN_PATTERN.fullmatch(presented)
        row = None
        if match:
            row = self._conn.execute("SELECT * FROM api_tokens WHERE id=?", (match.group(1),)).fetchone()
        expected = row["hash"] if row is not None else _DUMMY_HASH
        same = hmac.compare_digest(hash_token(presented), expected)
        if row is None or not same or row["revoked_at"] is not None:
            return None
        record = _record(row)
        if _stale(record.last_used_at):
            try:
                with self._write() as conn:
                    conn.execute("UPDATE api_tokens SET last_used_at=? WHERE id=?", (now_iso(), record.id))
            except sqlite3.OperationalError:
                pass  # the database is busy: when a token was last used is a hint, not worth failing a request for
        return record


def _stale(last_used_at: str | None) -> bool:
    if last_used_at is None:
        return True
    return datetime.now(UTC) - datetime.fromisoformat(last_used_at) >= LAST_USED_EVERY
