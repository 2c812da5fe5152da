"""What a caller gives and gets back: the limits of a run, its result, and the refusal error."""

from __future__ import annotations

import hashlib
import os
import shlex
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from aigentflow.exceptions import UsageError

GiB = 1 << 30
MiB = 1 << 20

KilledReason = Literal["timeout", "output_limit", "process_limit", "memory_limit", "cancelled"]


class SandboxRefused(UsageError):
    """The sandbox will not run this command as asked (a working directory outside the root...)."""


@dataclass(frozen=True)
class Limits:
    """What one run may use. ``None`` turns a limit off."""

    timeout_s: float = 600
    cpu_s: int | None = None
    """RLIMIT_CPU per process; None = timeout x CPUs, so only a runaway beyond the timeout hits it."""
    memory_bytes: int | None = 2 * GiB
    """The whole tree's memory cgroup limit; without one, RLIMIT_AS per process. Not both: the JVM
    and Go reserve far more address space than they use, and would not start under RLIMIT_AS."""
    max_processes: int | None = 256
    """cgroup pids.max (threads count), else RLIMIT_NPROC for non-root; and, without the cgroup, a
    watchdog that kills the tree when it counts this many processes."""
    max_output_bytes: int = MiB
    """stdout + stderr; more kills the tree and keeps the head and the tail."""
    max_file_bytes: int | None = GiB
    """RLIMIT_FSIZE: the largest file a process may write."""


@dataclass
class ExecResult:
    """What a command did, as stored on a step."""

    argv: list[str]
    cwd: str
    exit_code: int | None
    """The command's status (negative: killed by that signal); None when the sandbox killed it."""
    stdout: str
    stderr: str
    output_truncated: bool
    duration_s: float
    killed_reason: KilledReason | None
    isolation: dict[str, str] = field(default_factory=dict)
    leftover_processes: int = 0
    env_withheld: list[str] = field(default_factory=list)
    """Names (never values) of the caller's variables the command did not get and could get through
    ``build.env_passthrough``: terminal and shell noise and secret-looking ones left out."""
    env_refused: list[str] = field(default_factory=list)
    """Names of variables that were to be passed but were not: their name or value looks secret."""
    started_ns: int = 0
    """When the command started (``time.time_ns()``)."""

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and self.killed_reason is None

    def to_record(self) -> dict[str, Any]:
        """A JSON-able dict, for storing on a step."""
        return {**asdict(self), "ok": self.ok}

    def trace_record(self) -> dict[str, Any]:
        """What a trace keeps of the command (``tracing.spans.command_span``): its program and a hash of its
        line, never the line, its output or an environment value."""
        line = command_line(self.argv)
        return {"program": program_name(self.argv), "hash": hashlib.sha256(line.encode()).hexdigest()[:16],
                "exit_code": self.exit_code, "killed_reason": self.killed_reason, "duration_s": self.duration_s,
                "started_ns": self.started_ns, "isolation": dict(self.isolation),
                "output_truncated": self.output_truncated, "leftover_processes": self.leftover_processes,
                "env_withheld": len(self.env_withheld)}

    def summary(self) -> str:
        """One line for a user: "`pytest -q` stopped: timeout after 5.0 s; 0 processes left"."""
        shown = command_line(self.argv[2] if self.argv[:2] == ["sh", "-c"] else self.argv)
        shown = shown.replace("\n", "\\n")
        shown = shown if len(shown) <= 80 else shown[:77] + "..."
        duration = self.duration_s
        seconds = f"{duration * 1000:.0f} ms" if duration < 1 else f"{duration:.1f} s"
        if self.killed_reason is not None:
            why = self.killed_reason.replace("_", " ")
            text = f"`{shown}` stopped: {why} after {seconds}"
        elif self.exit_code is not None and self.exit_code < 0:
            text = f"`{shown}` killed by signal {-self.exit_code} after {seconds}"
        else:
            text = f"`{shown}` exited {self.exit_code} in {seconds}"
        if self.output_truncated:
            text += "; output truncated"
        if self.killed_reason is not None or self.leftover_processes:
            text += f"; {self.leftover_processes} processes left"
        return text

    def env_note(self, limit: int = 8) -> str:
        """What the command's environment lacked, for a user whose command failed ("" when nothing)."""
        parts = []
        if self.env_withheld:
            shown = ", ".join(self.env_withheld[:limit])
            more = len(self.env_withheld) - limit
            parts.append(f"not passed from your environment: {shown}" + (f" (and {more} more)" if more > 0 else ""))
        if self.env_refused:
            parts.append(f"refused because the name or value looks secret: {', '.join(self.env_refused)}")
        return "; ".join(parts)


def command_line(command: str | Sequence[str]) -> str:
    """The command as a user would type it."""
    return command if isinstance(command, str) else shlex.join(str(arg) for arg in command)


def program_name(argv: Sequence[str]) -> str:
    """The program a command runs, without its directory: ``pytest`` for ``sh -c "pytest -q"``, ``python``
    for ``/usr/bin/python3 -m ruff`` (``python3``), ``?`` when there is none."""
    words = list(argv)
    if words[:2] == ["sh", "-c"] and len(words) > 2:
        try:
            words = shlex.split(words[2])
        except ValueError:
            words = words[2].split()
        while words and "=" in words[0] and not words[0].startswith("="):  # VAR=value prefixes: never kept
            words.pop(0)
    return os.path.basename(words[0]) if words and words[0] else "?"
