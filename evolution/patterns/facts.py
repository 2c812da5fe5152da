"""Span facts: the typed columns the miner needs, extracted once from each trace segment.

A span's attributes are a JSON string; parsing ten million of them takes far longer than the mining
itself, so each segment (immutable once written) is parsed once, into ``.aigentflow/evolution/facts-v4/
batch-*.parquet`` (one file per mining run that found new segments, each row naming its segment). Spans
of the compacted ``traces.duckdb`` that no batch holds are added the same way when that file changes.
The model calls whose (run, prompt hash) was sent more than once are also kept apart, in
``repeats-*.parquet``, so that finding prompt loops counts those rather than every model call.
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

FACTS_DIRNAME = "facts-v4"
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
    "aigentflow.task.language", "aigentflow.skills.withheld",
)  # fmt: skip
_PATHS = "[" + ", ".join(f"'$.\"{name}\"'" for name in _ATTRIBUTES) + "]"

FACT_COLUMNS = """
    span_id, parent_id, run_id, coalesce(tenant_id, 'default') AS tenant_id, kind, name, start_ns, end_ns, status,
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
    a[13] AS language,
    a[14] AS skills_withheld,
    CASE WHEN kind = 'model' THEN hash(run_id, a[4]) END AS loop_key,
    CASE WHEN kind = 'task' THEN hash(run_id, a[8])
         WHEN kind = 'agent' AND a[3] LIKE 'build/%' THEN hash(run_id, nullif(split_part(a[3], '/', 2), '')) END
        AS task_key,
    hash(span_id) AS sid, hash(parent_id) AS pid,
    step_kind(a[3], name) AS step_kind
"""
"""One row per span; ``loop_key`` (run, prompt hash), ``task_key`` (run, task: of a task span, or of an
agent's build step), ``sid`` and ``pid`` (span and parent id) are hashed so that grouping, windows and
joins work on integers rather than strings; ``step_kind`` is computed
once. A batch is sorted by tenant, kind and status, so that a query for one tenant's spans of one kind (or
its errors) reads only the row groups that hold them (the miner asks its questions one tenant at a time)."""


def facts_dir(project_root: Path) -> Path:
    return Path(project_root) / ".aigentflow" / "evolution" / FACTS_DIRNAME


def batches(directory: Path) -> list[Path]:
    return sorted(directory.glob("batch-*.parquet"))


def repeats(directory: Path) -> list[Path]:
    """The files of the model calls whose (run, prompt hash) was sent more than once (``_update_repeats``)."""
    return sorted(directory.glob("repeats-*.parquet"))


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


def _write_batch(connection: Any, directory: Path, select_sql: str, parameters: list[Any],
                 prefix: str = "batch") -> int:
    name = f"{prefix}-{time.time_ns():020d}-{os.getpid()}.parquet"
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
    before = set(existing)
    spans = 0
    for chunk in _chunks(fresh):
        spans += _write_batch(connection, directory, f"""
            SELECT {FACT_COLUMNS}, parse_filename(filename) AS segment
            FROM (SELECT *, json_extract_string(attributes, {_PATHS}) AS a
                  FROM read_parquet(?, union_by_name := true, filename := true))
            ORDER BY tenant_id, kind, status
        """, [[str(p) for p in chunk]])
    spans += _compacted(connection, directory, trace_dir / DATABASE_FILENAME)
    written = [path for path in batches(directory) if path not in before]
    if written:
        _update_repeats(connection, directory, existing, written)
    if len(batches(directory)) > MAX_BATCHES:
        _merge(connection, directory)
    if len(repeats(directory)) > MAX_BATCHES:
        _merge(connection, directory, "repeats")
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
            ORDER BY tenant_id, kind, status
        """, [])
    finally:
        connection.execute("DETACH compacted")
    marker.write_text(json.dumps(seen))
    return rows


def _update_repeats(connection: Any, directory: Path, old: list[Path], new: list[Path]) -> None:
    """Add to the repeats the model calls whose (run, prompt hash) has now been sent twice or more: those
    of the new batches, and the one earlier call of a key sent once before (earlier calls of a key sent
    twice before are there already). Each model call gets there once, so a loop is a key with
    ``LOOP_CALLS`` rows in the repeats, counted over a few rows instead of every model call."""
    fresh = f"SELECT * FROM read_parquet({_parquet_list(new)}) WHERE kind = 'model' AND loop_key IS NOT NULL"
    earlier: dict[int, int] = {}
    if old:  # the fresh keys sent before, and how often: a scan of the old batches' keys alone
        earlier = dict(connection.execute(f"""
            SELECT loop_key, count(*) FROM read_parquet({_parquet_list(old)})
            WHERE kind = 'model' AND loop_key IN (SELECT loop_key FROM ({fresh}))
            GROUP BY loop_key""").fetchall())
    once = [key for key, n in earlier.items() if n == 1]
    promoted = "SELECT * FROM fresh WHERE false"
    if once:  # the rows of those few keys only, the filter read against the keys' column first
        promoted = (f"SELECT * FROM read_parquet({_parquet_list(old)}) "
                    f"WHERE kind = 'model' AND loop_key IN ({', '.join(map(str, once))})")
    sent_before = "SELECT NULL::UBIGINT AS loop_key, 0 AS n WHERE false"
    if earlier:
        sent_before = "SELECT * FROM (VALUES " + ", ".join(f"({k}::UBIGINT, {n})" for k, n in earlier.items()) \
            + ") AS v(loop_key, n)"
    _write_batch(connection, directory, f"""
        WITH fresh AS ({fresh}), sent_before AS ({sent_before}),
        now AS (SELECT loop_key FROM (SELECT loop_key, 1 AS n FROM fresh UNION ALL SELECT * FROM sent_before)
                GROUP BY loop_key HAVING sum(n) >= 2)
        SELECT * FROM fresh WHERE loop_key IN (SELECT loop_key FROM now)
        UNION ALL
        {promoted}
    """, [], prefix="repeats")


def _merge(connection: Any, directory: Path, prefix: str = "batch") -> None:
    old = [path for path in directory.glob(f"{prefix}-*.parquet") if path.stat().st_size < SMALL_BATCH_BYTES]
    if len(old) < 2:
        return
    merged = f"SELECT * FROM read_parquet({_parquet_list(old)}) ORDER BY tenant_id, kind, status"
    _write_batch(connection, directory, merged, [], prefix=prefix)
    for path in old:
        path.unlink(missing_ok=True)


def facts_source(project_root: Path, kind: str = "batch") -> str | None:
    """The SQL ``FROM`` source of every fact (``kind="repeats"``: of the repeated model calls), or None
    when there are none."""
    directory = facts_dir(project_root)
    existing = batches(directory) if kind == "batch" else repeats(directory)
    return f"read_parquet({_parquet_list(existing)})" if existing else None
