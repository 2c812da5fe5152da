"""The commands a piece of work ran, kept for its trace: ``with recording() as ran:`` collects the
``trace_record`` of every ``Sandbox.run`` the block makes (in this thread, or a context copied from it).

A ``ContextVar``, not a global list: two Ray tasks or threads in one process keep separate records, and
code that records nothing pays one lookup per command.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aigentflow.sandbox.records import ExecResult

_recording: ContextVar[list[dict[str, Any]] | None] = ContextVar("aigentflow_sandbox_commands", default=None)


@contextmanager
def recording() -> Iterator[list[dict[str, Any]]]:
    """The trace records of the commands run inside the block, in the order they ended."""
    ran: list[dict[str, Any]] = []
    token = _recording.set(ran)
    try:
        yield ran
    finally:
        _recording.reset(token)


def note(result: ExecResult) -> None:
    """Called by the executor for every command: kept when a ``recording`` block is open."""
    ran = _recording.get()
    if ran is not None:
        ran.append(result.trace_record())
