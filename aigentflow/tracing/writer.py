"""Writing spans: immutable Parquet segments, merged now and then into ``traces.duckdb``.

A DuckDB file held open for writing blocks every other process, even readers, so a writer never
opens ``traces.duckdb``: it appends segment files (temp name, then ``os.replace``) that readers
query without any lock; pyarrow writes them, column by column (DuckDB took 8x longer a span to bind
the rows as Python lists). ``compact`` merges segments into the database under an exclusive lock
file and deletes them only after the merge is committed and the database closed, so a reader
always finds each span in the database, in a segment, or in both (it dedupes on ``span_id``).
"""

from __future__ import annotations

import fcntl
import functools
import os
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

from aigentflow.exceptions import StoreError
from aigentflow.redact import Redactor
from aigentflow.tracing.rows import COLUMN_TYPES, UNSTORABLE, Row, RowEncoder, is_storable

SEGMENTS_DIRNAME = "segments"
DATABASE_FILENAME = "traces.duckdb"
COMPACT_LOCK_FILENAME = "compact.lock"
SEGMENT_SUFFIX = ".parquet"

PARQUET_OPTIONS: dict[str, Any] = {
    "compression": "snappy",
    # Each of these costs time in every flush (about a third of it for 256 spans): no dictionaries, no
    # Arrow schema (DuckDB reads Parquet's own), statistics only for what readers filter on.
    "use_dictionary": False,
    "store_schema": False,
    "write_statistics": ["run_id", "start_ns"],
}


def segments_dir(trace_dir: Path) -> Path:
    """Where a trace directory keeps its Parquet segments."""
    return Path(trace_dir) / SEGMENTS_DIRNAME


def list_segments(trace_dir: Path) -> list[Path]:
    """The finished segment files of a trace directory, oldest first (temp files excluded)."""
    try:
        entries = list(os.scandir(segments_dir(trace_dir)))
    except FileNotFoundError:
        return []
    names = sorted(
        e.name for e in entries if e.name.endswith(SEGMENT_SUFFIX) and not e.name.startswith(".")
    )
    return [segments_dir(trace_dir) / name for name in names]


class SpanBuffer:
    """What every ``TraceSink`` shares: spans redacted into rows as they are added (one that cannot be stored
    is counted in ``dropped_spans``), queued, and handed to ``flush`` every ``flush_every`` spans."""

    def __init__(self, redactor: Redactor | None, flush_every: int = 1024) -> None:
        self.redactor = redactor
        self.flush_every = max(1, flush_every)
        self.spans_written = 0
        self.dropped_spans = 0
        self._rows: list[Row] = []
        self._lock = threading.Lock()
        self._encode = RowEncoder(redactor).values

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def add(self, span: Mapping[str, Any]) -> None:
        """Queue one span; a span that cannot be serialised is counted in ``dropped_spans``."""
        try:
            row = self._encode(span)
        except UNSTORABLE:
            with self._lock:
                self.dropped_spans += 1
            return
        with self._lock:
            self._rows.append(row)
            full = len(self._rows) >= self.flush_every
        if full:
            self.flush()

    def extend(self, spans: Iterable[Mapping[str, Any]]) -> None:
        """Queue many spans."""
        for one in spans:
            self.add(one)

    def flush(self) -> Any:
        raise NotImplementedError

    def close(self) -> None:
        self.flush()


class SegmentWriter(SpanBuffer):
    """Buffers spans and writes them, redacted, as one Parquet segment per ``flush``."""

    def __init__(self, trace_dir: Path, redactor: Redactor | None, flush_every: int = 1024) -> None:
        super().__init__(redactor, flush_every)
        self.trace_dir = Path(trace_dir)
        self.segments_written = 0
        self._writer_tag = f"{os.getpid():07d}-{os.urandom(3).hex()}"
        self._directory = segments_dir(self.trace_dir)
        self._directory_made = False

    def flush(self) -> Path | None:
        """Write the queued spans as one segment; its path, or None when nothing was queued."""
        with self._lock:
            rows, self._rows = self._rows, []
            if not rows:
                return None
            directory = self._directory
            if not self._directory_made:
                directory.mkdir(parents=True, exist_ok=True)
                self._directory_made = True
            name = f"{time.time_ns():020d}-{self._writer_tag}-{self.segments_written:06d}"
            final = directory / f"{name}{SEGMENT_SUFFIX}"
            temporary = directory / f".{name}{SEGMENT_SUFFIX}.tmp"
            try:
                if not self._write(rows, temporary):
                    return None
                os.replace(temporary, final)
            except BaseException:
                self._directory_made = False  # made again next time, should it have been removed
                temporary.unlink(missing_ok=True)
                self._rows = rows + self._rows  # kept for the next flush
                raise
            self.segments_written += 1
            self.spans_written += len(rows)
            return final

    def _write(self, rows: list[Row], path: Path) -> bool:
        """Write ``rows`` as a Parquet file, column by column; rows that cannot be encoded as UTF-8 (text
        with lone surrogates) are dropped from ``rows`` and counted. False when none was left to write."""
        try:
            table = _table(rows)
        except UnicodeEncodeError:
            valid = [row for row in rows if is_storable(row)]
            self.dropped_spans += len(rows) - len(valid)
            rows[:] = valid
            if not valid:
                return False
            table = _table(valid)
        import pyarrow as arrow
        import pyarrow.parquet as parquet

        buffer = arrow.BufferOutputStream()  # then one write: faster than pyarrow's own file output
        parquet.write_table(table, buffer, **PARQUET_OPTIONS)
        with open(path, "xb") as handle:
            handle.write(buffer.getvalue())
        return True


@functools.cache
def _schema() -> Any:
    import pyarrow as arrow

    kinds = {"VARCHAR": arrow.string(), "BIGINT": arrow.int64()}
    return arrow.schema([(name, kinds[kind]) for name, kind in COLUMN_TYPES.items()])


def _table(rows: list[Row]) -> Any:
    """``rows`` as an Arrow table of the ``COLUMN_TYPES`` schema."""
    import pyarrow as arrow

    schema = _schema()
    columns = zip(*rows, strict=True)
    return arrow.Table.from_arrays(
        [arrow.array(column, field.type) for column, field in zip(columns, schema, strict=True)], schema=schema
    )


def sql_literal(path: Path) -> str:
    """A path as the inside of a single-quoted SQL string."""
    return str(path).replace("'", "''")


@contextmanager
def compaction_lock(
    trace_dir: Path, *, shared: bool = False, wait_s: float | None = None
) -> Iterator[bool]:
    """Hold ``compact.lock``: exclusive for the compactor, shared for readers.

    Yields whether the lock is held; with ``wait_s`` it gives up after that long and yields False.
    """
    mode = fcntl.LOCK_SH if shared else fcntl.LOCK_EX
    try:
        handle = open(Path(trace_dir) / COMPACT_LOCK_FILENAME, "a+b")  # noqa: SIM115 - `with handle` below; here so a failed open can yield False
    except OSError:
        if wait_s is None:
            raise
        yield False
        return
    with handle:
        if wait_s is None:
            fcntl.flock(handle, mode)
        elif not _flock_within(handle, mode, wait_s):
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _flock_within(handle: Any, mode: int, wait_s: float) -> bool:
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(handle, mode | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)


def _connect_for_writing(database: Path, wait_s: float) -> Any:
    """Open the database, waiting out readers that hold it read-only for a moment."""
    import duckdb

    deadline = time.monotonic() + wait_s
    while True:
        try:
            return duckdb.connect(str(database))
        except duckdb.IOException as exc:
            if time.monotonic() >= deadline:
                raise StoreError(
                    f"could not open {database} to compact traces: {exc}. Another process holds "
                    "it open; stop that process (or close its connection) and compact again."
                ) from None
            time.sleep(0.05)


def compact(trace_dir: Path, wait_s: float = 10.0) -> int:
    """Merge the segments of ``trace_dir`` into ``traces.duckdb``; how many spans were merged.

    One compactor at a time (an flock on ``compact.lock``); concurrent writers are never blocked.
    """
    trace_dir = Path(trace_dir)
    trace_dir.mkdir(parents=True, exist_ok=True)
    with compaction_lock(trace_dir):
        segments = list_segments(trace_dir)
        if not segments:
            return 0
        columns = ", ".join(f"{n} {t}" for n, t in COLUMN_TYPES.items())
        connection = _connect_for_writing(trace_dir / DATABASE_FILENAME, wait_s)
        try:
            connection.execute(f"CREATE TABLE IF NOT EXISTS spans ({columns})")
            before = connection.execute("SELECT count(*) FROM spans").fetchone()[0]
            # A crash after a commit but before deleting its segments must not double a span.
            connection.execute(
                f"""
                INSERT INTO spans
                SELECT {", ".join(COLUMN_TYPES)}
                FROM read_parquet(?, union_by_name := true) AS segment
                WHERE NOT EXISTS (SELECT 1 FROM spans WHERE spans.span_id = segment.span_id)
                QUALIFY row_number() OVER (PARTITION BY span_id ORDER BY start_ns) = 1
                """,
                [[str(path) for path in segments]],
            )
            merged = connection.execute("SELECT count(*) FROM spans").fetchone()[0] - before
        finally:
            connection.close()
        # Deleted only now: a reader that could not attach the database still finds them.
        for path in segments:
            path.unlink(missing_ok=True)
        return int(merged)
