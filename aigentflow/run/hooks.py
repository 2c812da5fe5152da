"""Lifecycle events of a run and the bus that delivers them to subscribers and user hooks.

Built-in subscribers (the audit log) run synchronously inside ``emit`` and their errors propagate.
User hooks (shell commands, Python functions from the config) run one at a time, in emit order, on a
single background worker thread; whatever they do (fail, time out, hang) never blocks or breaks the
run: it is reported through ``on_hook_error``.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import os
import signal
import subprocess
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from typing import Any, Protocol

from aigentflow.exceptions import UsageError

RUN_CREATED = "run.created"
RUN_STATE_CHANGED = "run.state_changed"
AGENT_STARTED = "agent.started"
AGENT_FINISHED = "agent.finished"
MODEL_CALLED = "model.called"
RUN_FINISHED = "run.finished"
RUN_FAILED = "run.failed"
RUN_PAUSED = "run.paused"
HOOK_FAILED = "hook.failed"

EVENT_NAMES: tuple[str, ...] = (
    RUN_CREATED,
    RUN_STATE_CHANGED,
    AGENT_STARTED,
    AGENT_FINISHED,
    MODEL_CALLED,
    RUN_FINISHED,
    RUN_FAILED,
    RUN_PAUSED,
    HOOK_FAILED,
)

DEFAULT_HOOK_TIMEOUT_S = 10.0
OUTPUT_LIMIT_BYTES = 4096
NOT_RUN_BUS_CLOSED = "not run: bus closed"

logger = logging.getLogger(__name__)


def _utc_now() -> str:
    return datetime.now(UTC).isoformat()


@dataclass(frozen=True)
class Event:
    """One lifecycle event of a run."""

    name: str
    run_id: str
    tenant_id: str = "default"
    at: str = field(default_factory=_utc_now)
    data: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        """The event as compact JSON with sorted keys (values JSON cannot hold become strings)."""
        payload = {
            "name": self.name,
            "run_id": self.run_id,
            "tenant_id": self.tenant_id,
            "at": self.at,
            "data": self.data,
        }
        return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)


def event_matches(pattern: str, name: str) -> bool:
    """True when ``pattern`` (exact name, ``*`` or a glob like ``run.*``) selects event ``name``."""
    return pattern == "*" or pattern == name or fnmatchcase(name, pattern)


def check_event_pattern(pattern: str) -> str:
    """Return ``pattern`` if it selects at least one known event, else raise UsageError."""
    if not any(event_matches(pattern, name) for name in EVENT_NAMES):
        raise UsageError(
            f"hook event {pattern!r} matches no event; use '*', a pattern like 'run.*' "
            f"or one of: {', '.join(EVENT_NAMES)}"
        )
    return pattern


class HookFailed(Exception):
    """A user hook failed; the message says how (exit status, timeout, exception)."""


class UserHook(Protocol):
    """What the bus needs from a user hook."""

    event: str
    timeout_s: float

    @property
    def description(self) -> str: ...

    def run(self, event: Event) -> None: ...

    def cancel(self) -> None: ...


def _output_tail(file: Any) -> str:
    """The last OUTPUT_LIMIT_BYTES of a captured output file, saying how much was cut."""
    size = file.seek(0, os.SEEK_END)
    cut = max(0, size - OUTPUT_LIMIT_BYTES)
    file.seek(cut)
    text = file.read().decode("utf-8", errors="replace")
    return f"[first {cut} bytes cut]...{text}" if cut else text


class ShellHook:
    """A shell command run with ``/bin/sh -c``, the event JSON on its stdin."""

    def __init__(self, command: str, event: str = "*", timeout_s: float = DEFAULT_HOOK_TIMEOUT_S):
        if not command.strip():
            raise UsageError(f"hook for event {event!r} has an empty command; give a shell command")
        if timeout_s <= 0:
            raise UsageError(f"hook {command!r}: timeout_s must be > 0, got {timeout_s}")
        self.command = command
        self.event = check_event_pattern(event)
        self.timeout_s = float(timeout_s)
        self._process: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    @property
    def description(self) -> str:
        """How the hook is named in error reports."""
        return f"shell hook {self.command!r} (event {self.event!r})"

    def run(self, event: Event) -> None:
        """Run the command; raise HookFailed on non-zero exit or timeout (whole tree killed)."""
        env = {**os.environ, "AIGENTFLOW_EVENT": event.name}
        with (
            tempfile.TemporaryFile() as stdin,
            tempfile.TemporaryFile() as stdout,
            tempfile.TemporaryFile() as stderr,
        ):
            stdin.write(event.to_json().encode())
            stdin.seek(0)
            process = subprocess.Popen(
                ["/bin/sh", "-c", self.command],
                stdin=stdin,
                stdout=stdout,
                stderr=stderr,
                env=env,
                start_new_session=True,  # own process group: a timeout kills the whole tree
            )
            with self._lock:
                self._process = process
            try:
                process.wait(timeout=self.timeout_s)
                returncode = process.returncode
                failure = None if returncode == 0 else self._exit_message(returncode)
            except subprocess.TimeoutExpired:
                self._kill_group(process)
                process.wait()
                failure = f"timed out after {self.timeout_s:g}s; its process group was killed"
            finally:
                with self._lock:
                    self._process = None
            if failure is not None:
                raise HookFailed(f"{failure}{self._output(stdout, stderr)}")

    def cancel(self) -> None:
        """Kill the process tree of the command running now, if any."""
        with self._lock:
            if self._process is not None:
                self._kill_group(self._process)

    @staticmethod
    def _kill_group(process: subprocess.Popen[bytes]) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)

    @staticmethod
    def _exit_message(returncode: int) -> str:
        if returncode < 0:
            return f"killed by signal {-returncode}"
        return f"exited with status {returncode}"

    @staticmethod
    def _output(stdout: Any, stderr: Any) -> str:
        parts = []
        for label, file in (("stdout", stdout), ("stderr", stderr)):
            text = _output_tail(file).strip()
            if text:
                parts.append(f"\n{label}: {text}")
        return "".join(parts)


def _resolve_entry_point(entry_point: str) -> Callable[[Event], Any]:
    module_name, _, function_name = entry_point.partition(":")
    if not module_name or not function_name:
        raise UsageError(
            f"hook entry point {entry_point!r} is not of the form 'module:function' "
            "(e.g. 'my_hooks:notify')"
        )
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # a user module can fail to import in any way
        raise UsageError(
            f"hook entry point {entry_point!r}: cannot import module {module_name!r} "
            f"({type(exc).__name__}: {exc}); check that it is installed or on PYTHONPATH"
        ) from exc
    function = getattr(module, function_name, None)
    if not callable(function):
        raise UsageError(
            f"hook entry point {entry_point!r}: module {module_name!r} has no callable "
            f"{function_name!r}"
        )
    return function


class PythonHook:
    """A Python function ``module:function`` called with the Event."""

    def __init__(
        self, entry_point: str, event: str = "*", timeout_s: float = DEFAULT_HOOK_TIMEOUT_S
    ):
        if timeout_s <= 0:
            raise UsageError(f"hook {entry_point!r}: timeout_s must be > 0, got {timeout_s}")
        self.entry_point = entry_point
        self.event = check_event_pattern(event)
        self.timeout_s = float(timeout_s)
        self.function = _resolve_entry_point(entry_point)

    @property
    def description(self) -> str:
        """How the hook is named in error reports."""
        return f"python hook {self.entry_point} (event {self.event!r})"

    def run(self, event: Event) -> None:
        """Call the function in a daemon thread; raise HookFailed if it raises or overruns."""
        errors: list[BaseException] = []

        def call() -> None:
            try:
                self.function(event)
            except BaseException as exc:  # noqa: BLE001 - reported, never propagated
                errors.append(exc)

        thread = threading.Thread(target=call, name=f"hook {self.entry_point}", daemon=True)
        thread.start()
        thread.join(self.timeout_s)
        if thread.is_alive():
            raise HookFailed(f"still running after {self.timeout_s:g}s; abandoned")
        if errors:
            raise HookFailed(f"raised {type(errors[0]).__name__}: {errors[0]}")

    def cancel(self) -> None:
        """A Python thread cannot be stopped: nothing to do."""


def build_user_hooks(specs: Iterable[Any]) -> list[ShellHook | PythonHook]:
    """Hooks from config specs (attributes event, command, entry_point, timeout_s)."""
    hooks: list[ShellHook | PythonHook] = []
    for spec in specs:
        event = getattr(spec, "event", None) or "*"
        command = getattr(spec, "command", None)
        entry_point = getattr(spec, "entry_point", None)
        timeout_s = getattr(spec, "timeout_s", None) or DEFAULT_HOOK_TIMEOUT_S
        if bool(command) == bool(entry_point):
            raise UsageError(
                f"hook for event {event!r} must set exactly one of 'command' or 'entry_point' "
                f"(got command={command!r}, entry_point={entry_point!r})"
            )
        if command:
            hooks.append(ShellHook(command, event=event, timeout_s=timeout_s))
        else:
            hooks.append(PythonHook(entry_point, event=event, timeout_s=timeout_s))
    return hooks


class EventBus:
    """Delivers events to built-in subscribers (synchronously) and user hooks (in background).

    ``on_hook_error(description, message, event)`` is called from the worker thread (or from the
    thread calling ``close``/``emit`` for hooks that never ran), so it must be thread-safe.
    """

    def __init__(
        self,
        redactor: Any = None,
        on_hook_error: Callable[[str, str, Event], None] | None = None,
    ):
        self.redactor = redactor
        self.on_hook_error = on_hook_error
        self._subscribers: list[tuple[str, Callable[[Event], Any]]] = []
        self._user_hooks: list[UserHook] = []
        self._queue: deque[tuple[UserHook, Event]] = deque()
        self._running: UserHook | None = None
        self._closed = False
        self._condition = threading.Condition()
        self._worker: threading.Thread | None = None

    def subscribe(self, callback: Callable[[Event], Any], event: str = "*") -> None:
        """Add a built-in subscriber, run in ``emit``; its exceptions propagate."""
        self._subscribers.append((check_event_pattern(event), callback))

    def add_user_hook(self, hook: UserHook) -> None:
        """Add a user hook, run in the background worker; its failures go to on_hook_error."""
        self._user_hooks.append(hook)

    def emit(self, name: str, run_id: str, tenant_id: str = "default", **data: Any) -> Event:
        """Build, redact and deliver an event; returns once the built-in subscribers ran."""
        if name not in EVENT_NAMES:
            raise ValueError(f"unknown event {name!r}; known events: {', '.join(EVENT_NAMES)}")
        if self.redactor is not None:
            data = self.redactor.redact(data)
        event = Event(name=name, run_id=run_id, tenant_id=tenant_id, data=data)
        for pattern, callback in list(self._subscribers):
            if event_matches(pattern, name):
                callback(event)
        hooks = [hook for hook in self._user_hooks if event_matches(hook.event, name)]
        if hooks:
            self._enqueue(hooks, event)
        return event

    def pending(self) -> int:
        """User hook calls queued or running now."""
        with self._condition:
            return len(self._queue) + (self._running is not None)

    def close(self, timeout_s: float = 5.0) -> None:
        """Wait up to ``timeout_s`` for queued user hooks, then stop; report what never ran."""
        with self._condition:
            self._condition.wait_for(
                lambda: not self._queue and self._running is None, timeout=timeout_s
            )
            self._closed = True
            never_ran = list(self._queue)
            self._queue.clear()
            running = self._running
            self._condition.notify_all()
        if running is not None:
            running.cancel()
        for hook, event in never_ran:
            self._report(hook, NOT_RUN_BUS_CLOSED, event)
        if self._worker is not None:
            # Give a cancelled hook a moment so its failure is reported before the owner exits.
            self._worker.join(timeout=1.0)

    def _enqueue(self, hooks: list[UserHook], event: Event) -> None:
        with self._condition:
            closed = self._closed
            if not closed:
                self._queue.extend((hook, event) for hook in hooks)
                if self._worker is None:
                    self._worker = threading.Thread(
                        target=self._work, name="aigentflow-hooks", daemon=True
                    )
                    self._worker.start()
                self._condition.notify_all()
        if closed:
            for hook in hooks:
                self._report(hook, NOT_RUN_BUS_CLOSED, event)

    def _work(self) -> None:
        while True:
            with self._condition:
                self._condition.wait_for(lambda: self._queue or self._closed)
                if not self._queue:
                    return
                hook, event = self._queue.popleft()
                self._running = hook
            try:
                hook.run(event)
            except Exception as exc:  # noqa: BLE001 - a user hook must never break the run
                message = str(exc)
                if not isinstance(exc, HookFailed):
                    message = f"{type(exc).__name__}: {exc}"
                if self._closed:
                    message = f"interrupted, bus closed: {message}"
                self._report(hook, message, event)
            finally:
                with self._condition:
                    self._running = None
                    self._condition.notify_all()

    def _report(self, hook: UserHook, message: str, event: Event) -> None:
        if self.on_hook_error is None:
            logger.warning("%s failed on %s: %s", hook.description, event.name, message)
            return
        try:
            self.on_hook_error(hook.description, message, event)
        except Exception:
            logger.exception("on_hook_error failed while reporting %s", hook.description)
