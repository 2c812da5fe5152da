"""Phase 1 (MVP) rollback: revert to no system, a fresh start.

The whole state directory ``.aigentflow/`` (the run store, runs' outputs, traces, worktrees, config, flags,
agents, cassettes; all but ``exports/``) is archived into ``.aigentflow/exports/rollback-mvp-<time>.tar.gz``,
then removed: the project is no longer initialised (``aigentflow init`` starts afresh). The git repository
is not touched (its branches, commits and worktree records stay; a worktree's directory comes back with the
undo). Refused while a run is live. The ``admin.rollback`` audit entry is written before the archive, so it
is in it; the manifest ``rollback-mvp-<time>.json`` names the archive, its size and sha256.

The undo extracts the archive back (refused when the project was initialised again since: that state would
be overwritten) and audits ``admin.rollback.undone`` in the restored store.
"""

from __future__ import annotations

import hashlib
import shutil
import tarfile
from pathlib import Path
from typing import Any

from aigentflow.exceptions import UsageError
from aigentflow.rollback import export as exports

PHASE = "mvp"
REASON = "admin rollback mvp"
HEARTBEAT_S = 120
"""A run on another host counts as live while its heartbeat is younger than this."""


def live_runs(store: Any) -> list[str]:
    """Runs being driven now: by a live process here, or (another host) with a recent heartbeat."""
    import socket
    from datetime import UTC, datetime

    live = []
    now = datetime.now(UTC)
    for run in store.list_runs(limit=1_000_000):
        if run.state in ("COMPLETED", "FAILED", "CANCELLED") or not run.owner_pid:
            continue
        if run.owner_host == socket.gethostname():
            if run.owner_alive_here():
                live.append(run.id)
        elif run.heartbeat_at and (now - datetime.fromisoformat(run.heartbeat_at)).total_seconds() < HEARTBEAT_S:
            live.append(run.id)
    return live


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def rollback(paths: Any) -> dict[str, Any]:
    from aigentflow.store.rows import now_iso
    from aigentflow.store.sqlite import SQLiteRunStore

    state_dir = Path(paths.state_dir)
    store = SQLiteRunStore(paths.database)
    try:
        live = live_runs(store)
        if live:
            raise UsageError(f"run(s) {', '.join(live)} are live; a fresh start would pull their state away. Let "
                             "them finish, or pause them (`aigentflow admin emergency --pause-all`), then roll back. "
                             "Nothing changed.")
        runs = len(store.list_runs(limit=1_000_000))
        archive = exports.new_export(paths, PHASE, ".tar.gz")
        manifest = archive.with_name(archive.name.removesuffix(".tar.gz") + ".json")
        store.append_audit("admin.rollback", None, {"phase": PHASE, "archive": str(archive), "runs": runs})
    finally:
        store.close()
    entries = sorted(p for p in state_dir.iterdir() if p.name != exports.EXPORTS)
    archive.parent.mkdir(parents=True, exist_ok=True)
    partial = archive.with_name(archive.name + ".partial")
    with tarfile.open(partial, "w:gz") as tar:
        for entry in entries:
            tar.add(entry, arcname=entry.name)
    partial.replace(archive)
    done = {"phase": PHASE, "export": str(manifest), "archive": str(archive), "bytes": archive.stat().st_size,
            "sha256": _sha256(archive), "entries": [p.name for p in entries], "runs": runs, "changed": True}
    exports.write(manifest, {**done, "exported_at": now_iso()})
    for entry in entries:  # only once the archive is whole
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    return done


def undo(paths: Any, path: Path) -> dict[str, Any]:

    data = exports.read(path, PHASE)
    archive = Path(data["archive"])
    state_dir = Path(paths.state_dir)
    if Path(paths.database).exists():
        raise UsageError(f"{paths.root} was initialised again since the rollback ({paths.database} exists): the "
                         f"archive would overwrite that state. Move {state_dir} aside (keep its exports/), then undo "
                         "again. Nothing changed.")
    if not archive.exists() or _sha256(archive) != data.get("sha256"):
        raise UsageError(f"the archive {archive} is missing or not the one the rollback wrote (its sha256 differs); "
                         "nothing to restore from. Nothing changed.")
    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(state_dir, filter="data")
    exports.mark_undone(path, data)
    done = {"phase": PHASE, "undo": True, "export": str(path), "archive": str(archive), "entries": data["entries"]}
    exports.audit(paths, "admin.rollback.undone", done)
    return done


def describe(done: dict[str, Any]) -> list[str]:
    if done.get("undo"):
        return [f"restored {len(done['entries'])} entries of .aigentflow/ from {done['archive']}",
                "the project is back as it was before the rollback"]
    return [f"archived .aigentflow/ ({done['runs']} runs; {', '.join(done['entries'])}) to {done['archive']} "
            f"({done['bytes']} bytes, sha256 {done['sha256'][:12]})",
            "removed it: the project is not initialised now (`aigentflow init` starts afresh); the git repository "
            "is untouched",
            f"`aigentflow admin rollback {PHASE} --undo` restores it (manifest {done['export']})"]
