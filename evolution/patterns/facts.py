"""Span facts: the typed columns the miner needs, extracted once from each trace segment.

A span's attributes are a JSON string; parsing ten million of them takes far longer than the mining
itself, so each segment (immutable once written) is parsed once, into ``.aigentflow/evolution/facts-v2/
batch-*.parquet`` (one file per mining run that found new segments, each row naming its segment). Spans
of the compacted ``traces.duckdb`` that no batch holds are added the same way when that file changes.
A mining run holds ``facts.lock`` (flock) while it extracts and queries. A span is in exactly one
segment (a writer never writes a span twice), so segments are not deduplicated against each other.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from aigentflow.tracing.writer import DATABASE_FILENAME, list_segments, sql_literal

FACTS_DIRNAME = "facts-v2"
"""Bump when the columns change: facts are then extracted again from the segments."""
MAX_BATCHES = 24
"""More batch files than this: the small ones are merged into one (reading many small files is slow)."""
SMALL_BATCH_BYTES = 8 << 20
CHUNK_BYTES = 48 << 20
"""Segments parsed into one batch at most (by file size): DuckDB's JSON parsing and sorting hold more
memory than its ``memory_limit`` accounts for (about 0.7 GB per million spans)."""

_ATTRIBUTES = (
    "gen_ai.agent.name", "aigentflow.tool.role", "aigentflow.step", "aigentflow.prompt_hash",
    "aigentflow.cost_usd", "gen_ai.tool.name", "aigentflow.tool.refused", "aigentflow.task.id",
    "aigentflow.task.status", "aigentflow.task.fix_attempts", "aigentflow.review.verdict", "aigentflow.state.to",
)  # fmt: skip
_PATHS = "[" + ", ".join(f"'$.\"{name}\"'" for name in _ATTRIBUTES) + "]"

FACT_COLUMNS = """
    span_id, parent_id, run_id, kind, name, start_ns, end_ns, status,
    CASE WHEN status = 'error' THEN coalesce(error, 'error') END AS error,
    coalesce(a[1], a[2]) AS role,
    a[3] AS step,
    CASE WHEN kind = 'model' THEN a[4] END AS prompt_hash,
    TRY_CAST(a[5] AS DOUBLE) AS cost_usd,
    a[6] AS tool,
    TRY_CAST(a[7] AS BOOLEAN) AS refused,
    a[8] AS task_id,
    a[9] AS task_status,
    TRY_CAST(a[10] AS INTEGER) AS fix_attempts,
    a[11] AS verdict,
    a[12] AS state_to,
    CASE WHEN kind = 'model' THEN hash(run_id, a[4]) END AS loop_key,
    hash(span_id) AS sid, hash(parent_id) AS pid,
    step_kind(a[3], name) AS step_kind
"""
"""One row per span; ``loop_key`` (run, prompt hash), ``sid`` and ``pid`` (span and parent id) are
hashed so that grouping and joining work on integers rather than strings; ``step_kind`` is computed
once. A batch is sorted by kind and status, so that a query for one kind (or for errors) reads only
the row groups that hold it."""


def facts_dir(project_root: Path) -> Path:
    return Path(project_root) / ".aigentflow" / "evolution" / FACTS_DIRNAME


def batches(directory: Path) -> list[Path]:
    return sorted(directory.glob("batch-*.parquet"))


@contextmanager
def facts_lock(directory: Path) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "facts.lock", "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _parquet_list(paths: list[Path]) -> str:
    return "[" + ", ".join(f"'{sql_literal(p)}'" for p in paths) + "]"


def _write_batch(connection: Any, directory: Path, select_sql: str, parameters: list[Any]) -> int:
    name = f"batch-{time.time_ns():020d}-{os.getpid()}.parquet"
    temporary, final = directory / f".{name}.tmp", directory / name
    connection.execute(f"COPY ({select_sql}) TO '{sql_literal(temporary)}' (FORMAT PARQUET)", parameters)
    rows = connection.execute(f"SELECT count(*) FROM read_parquet('{sql_literal(temporary)}')").fetchone()[0]
    if rows:
        os.replace(temporary, final)
    else:
        temporary.unlink(missing_ok=True)
    return int(rows)


def update_facts(connection: Any, project_root: Path) -> dict[str, Any]:
    """Extract the facts of segments (and compacted spans) no batch holds yet; call under ``facts_lock``.
    Returns what was done: ``{"segments": n, "spans": n, "seconds": s}``."""
    from evolution.patterns.queries import MACROS

    started = time.perf_counter()
    connection.execute(MACROS)
    directory = facts_dir(project_root)
    trace_dir = Path(project_root) / ".aigentflow" / "traces"
    existing = batches(directory)
    covered: set[str] = set()
    if existing:
        covered = {row[0] for row in connection.execute(
            f"SELECT DISTINCT segment FROM read_parquet({_parquet_list(existing)}) WHERE segment IS NOT NULL"
        ).fetchall()}
    fresh = [p for p in list_segments(trace_dir) if p.name not in covered]
    spans = 0
    for chunk in _chunks(fresh):
        spans += _write_batch(connection, directory, f"""
            SELECT {FACT_COLUMNS}, parse_filename(filename) AS segment
            FROM (SELECT *, json_extract_string(attributes, {_PATHS}) AS a
                  FROM read_parquet(?, union_by_name := true, filename := true))
            ORDER BY kind, status
        """, [[str(p) for p in chunk]])
    spans += _compacted(connection, directory, trace_dir / DATABASE_FILENAME)
    if len(batches(directory)) > MAX_BATCHES:
        _merge(connection, directory)
    return {"segments": len(fresh), "spans": spans, "seconds": round(time.perf_counter() - started, 3)}


def _chunks(segments: list[Path]) -> list[list[Path]]:
    """Segments in groups of at most ``CHUNK_BYTES`` (one batch each): extraction's memory stays bounded."""
    chunks: list[list[Path]] = []
    size = CHUNK_BYTES
    for path in segments:
        length = path.stat().st_size
        if size + length > CHUNK_BYTES:
            chunks.append([])
            size = 0
        chunks[-1].append(path)
        size += length
    return chunks


def _compacted(connection: Any, directory: Path, database: Path) -> int:
    """Facts of the compacted database's spans that no batch holds, when the file changed since last time."""
    import duckdb

    if not database.exists():
        return 0
    marker = directory / "compacted.json"
    stat = database.stat()
    seen = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    if marker.exists() and json.loads(marker.read_text()) == seen:
        return 0
    try:
        connection.execute(f"ATTACH '{sql_literal(database)}' AS compacted (READ_ONLY)")
    except duckdb.IOException:
        return 0  # a compactor holds it right now: its spans are still in segments, or next time
    try:
        if not connection.execute("SELECT count(*) FROM duckdb_tables() WHERE database_name = 'compacted'"
                                  " AND table_name = 'spans'").fetchone()[0]:
            return 0
        existing = batches(directory)
        known = f"SELECT span_id FROM read_parquet({_parquet_list(existing)})" if existing else \
            "SELECT NULL::VARCHAR AS span_id WHERE false"
        rows = _write_batch(connection, directory, f"""
            SELECT {FACT_COLUMNS}, NULL::VARCHAR AS segment
            FROM (SELECT *, json_extract_string(attributes, {_PATHS}) AS a FROM compacted.spans
                  WHERE span_id NOT IN ({known}))
            ORDER BY kind, status
        """, [])
    finally:
        connection.execute("DETACH compacted")
    marker.write_text(json.dumps(seen))
    return rows


def _merge(connection: Any, directory: Path) -> None:
    old = [path for path in batches(directory) if path.stat().st_size < SMALL_BATCH_BYTES]
    if len(old) < 2:
        return
    _write_batch(connection, directory, f"SELECT * FROM read_parquet({_parquet_list(old)}) ORDER BY kind, status", [])
    for path in old:
        path.unlink(missing_ok=True)


def facts_source(project_root: Path) -> str | None:
    """The SQL ``FROM`` source of every fact, or None when there are none."""
    existing = batches(facts_dir(project_root))
    return f"read_parquet({_parquet_list(existing)})" if existing else None
