"""The event bus: built-in subscribers, user shell/Python hooks, failures, timeouts and close."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest

from aigentflow.exceptions import UsageError
from aigentflow.run.hooks import (
    EVENT_NAMES,
    NOT_RUN_BUS_CLOSED,
    Event,
    EventBus,
    PythonHook,
    ShellHook,
    build_user_hooks,
)


class ErrorLog:
    """Collects on_hook_error reports; lets a test wait for them."""

    def __init__(self) -> None:
        self.reports: list[tuple[str, str, Event]] = []
        self._condition = threading.Condition()

    def __call__(self, description: str, message: str, event: Event) -> None:
        with self._condition:
            self.reports.append((description, message, event))
            self._condition.notify_all()

    def wait_for(self, count: int, timeout_s: float = 5.0) -> list[tuple[str, str, Event]]:
        with self._condition:
            self._condition.wait_for(lambda: len(self.reports) >= count, timeout=timeout_s)
            return list(self.reports)


def live_processes_with(marker: str) -> list[int]:
    """Pids of non-zombie processes whose command line contains ``marker``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if marker in cmdline and state != "Z":
            found.append(int(entry.name))
    return found


def write_hook_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> str:
    """Write a uniquely named module into tmp_path, put it on sys.path, return its name."""
    name = f"user_hooks_{uuid.uuid4().hex[:10]}"
    (tmp_path / f"{name}.py").write_text(body)
    monkeypatch.syspath_prepend(str(tmp_path))
    return name


def test_shell_hook_gets_event_json_on_stdin_and_event_name_in_env(tmp_path: Path) -> None:
    stdin_file, env_file = tmp_path / "stdin.json", tmp_path / "env.txt"
    bus = EventBus()
    bus.add_user_hook(
        ShellHook(f'cat > "{stdin_file}"; printf %s "$AIGENTFLOW_EVENT" > "{env_file}"')
    )
    event = bus.emit("run.created", "run-1", tenant_id="acme", feature="login page")
    bus.close()

    assert json.loads(stdin_file.read_text()) == {
        "name": "run.created",
        "run_id": "run-1",
        "tenant_id": "acme",
        "at": event.at,
        "data": {"feature": "login page"},
    }
    assert env_file.read_text() == "run.created"


def test_shell_hook_sees_the_callers_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MY_HOOK_TOKEN", "secret-123")
    out = tmp_path / "token.txt"
    bus = EventBus()
    bus.add_user_hook(ShellHook(f'printf %s "$MY_HOOK_TOKEN" > "{out}"'))
    bus.emit("run.finished", "run-1")
    bus.close()
    assert out.read_text() == "secret-123"


def test_failing_shell_hook_is_reported_with_status_and_output() -> None:
    errors = ErrorLog()
    bus = EventBus(on_hook_error=errors)
    bus.add_user_hook(ShellHook("echo out-text; echo broken-thing >&2; exit 3", event="run.failed"))
    event = bus.emit("run.failed", "run-7", reason="boom")
    bus.close()

    [(description, message, reported)] = errors.wait_for(1)
    assert "exit 3" in description
    assert "exited with status 3" in message
    assert "broken-thing" in message and "out-text" in message
    assert reported is event


def test_hook_output_in_report_is_truncated_to_4kb() -> None:
    errors = ErrorLog()
    bus = EventBus(on_hook_error=errors)
    bus.add_user_hook(ShellHook("head -c 100000 /dev/zero | tr '\\0' a; echo END; exit 1"))
    bus.emit("run.failed", "run-1")
    bus.close()
    [(_, message, _)] = errors.wait_for(1)
    assert len(message) < 4096 + 200
    assert message.rstrip().endswith("END")
    assert "bytes cut" in message


def test_hanging_shell_hook_never_blocks_emit_and_its_process_tree_is_killed() -> None:
    marker = f"300.{uuid.uuid4().int % 10**9:09d}"  # a unique sleep duration to find the processes
    errors = ErrorLog()
    bus = EventBus(on_hook_error=errors)
    bus.add_user_hook(ShellHook(f"sleep {marker} & sleep {marker}", timeout_s=2.0))

    started = time.monotonic()
    bus.emit("run.created", "run-1")
    bus.emit("run.finished", "run-1")
    # well under one hook timeout (2 s), on a loaded 2-core machine too: emit did not wait for the hook
    assert time.monotonic() - started < 1.0
    assert bus.pending() == 2

    reports = errors.wait_for(2, timeout_s=10.0)
    assert [event.name for _, _, event in reports] == ["run.created", "run.finished"]
    assert all("timed out after 2s" in message for _, message, _ in reports)
    deadline = time.monotonic() + 3.0
    while live_processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert live_processes_with(marker) == []
    assert bus.pending() == 0
    bus.close()


def test_python_hook_is_called_with_the_event(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "called.txt"
    module = write_hook_module(
        tmp_path,
        monkeypatch,
        "from pathlib import Path\n"
        "def on_event(event):\n"
        f"    Path({str(out)!r}).write_text(\n"
        "        event.name + ' ' + event.run_id + ' ' + event.data['agent'])\n",
    )
    bus = EventBus()
    bus.add_user_hook(PythonHook(f"{module}:on_event", event="agent.started"))
    bus.emit("agent.started", "run-9", agent="planner")
    bus.close()
    assert out.read_text() == "agent.started run-9 planner"


def test_python_hook_that_raises_or_hangs_is_reported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = write_hook_module(
        tmp_path,
        monkeypatch,
        "import time\n"
        "def explode(event):\n"
        "    raise RuntimeError('webhook down')\n"
        "def hang(event):\n"
        "    time.sleep(5)\n",
    )
    errors = ErrorLog()
    bus = EventBus(on_hook_error=errors)
    bus.add_user_hook(PythonHook(f"{module}:explode"))
    bus.add_user_hook(PythonHook(f"{module}:hang", timeout_s=2.0))

    started = time.monotonic()
    bus.emit("run.paused", "run-1")
    assert time.monotonic() - started < 1.0, "emit returned well before the hanging hook's 2 s timeout"

    reports = errors.wait_for(2)
    assert [description for description, _, _ in reports] == [
        f"python hook {module}:explode (event '*')",
        f"python hook {module}:hang (event '*')",
    ]
    assert reports[0][1] == "raised RuntimeError: webhook down"
    assert reports[1][1] == "still running after 2s; abandoned"
    bus.close()


@pytest.mark.parametrize(
    ("entry_point", "expected"),
    [
        ("no_such_module_xyz:run", "module 'no_such_module_xyz' (ModuleNotFoundError"),
        ("json:no_such_function", "module 'json' has no callable 'no_such_function'"),
        ("just_a_module", "is not of the form 'module:function'"),
    ],
)
def test_bad_python_entry_point_is_a_usage_error(entry_point: str, expected: str) -> None:
    with pytest.raises(UsageError) as raised:
        PythonHook(entry_point)
    assert entry_point in str(raised.value)
    assert expected in str(raised.value)


def test_builtin_subscribers_run_in_emit_in_order_and_their_errors_propagate() -> None:
    seen: list[str] = []
    bus = EventBus()
    bus.subscribe(lambda event: seen.append(f"first {event.name}"))
    bus.subscribe(lambda event: seen.append(f"second {event.name}"))
    bus.emit("run.created", "run-1")
    assert seen == ["first run.created", "second run.created"]

    def failing_audit(event: Event) -> None:
        raise OSError("audit table is read-only")

    bus.subscribe(failing_audit, event="run.failed")
    with pytest.raises(OSError, match="audit table is read-only"):
        bus.emit("run.failed", "run-1")
    bus.close()


def test_redactor_is_applied_to_event_data_for_subscribers_and_hooks(tmp_path: Path) -> None:
    class Redactor:
        def redact(self, obj: dict) -> dict:
            return {key: "[REDACTED]" if key == "api_key" else value for key, value in obj.items()}

    stdin_file = tmp_path / "stdin.json"
    seen: list[Event] = []
    bus = EventBus(redactor=Redactor())
    bus.subscribe(seen.append)
    bus.add_user_hook(ShellHook(f'cat > "{stdin_file}"'))
    event = bus.emit("model.called", "run-1", model="gpt", api_key="sk-live-123")
    bus.close()

    assert event.data == {"model": "gpt", "api_key": "[REDACTED]"}
    assert seen[0].data == event.data
    assert "sk-live-123" not in stdin_file.read_text()
    assert json.loads(stdin_file.read_text())["data"]["api_key"] == "[REDACTED]"


def test_event_patterns_select_exact_names_prefixes_and_everything() -> None:
    received: dict[str, list[str]] = {"run.*": [], "agent.finished": [], "*": []}
    bus = EventBus()
    for pattern, names in received.items():
        bus.subscribe(lambda event, names=names: names.append(event.name), event=pattern)
    for name in ("run.created", "agent.started", "agent.finished", "run.failed", "hook.failed"):
        bus.emit(name, "run-1")

    assert received["run.*"] == ["run.created", "run.failed"]
    assert received["agent.finished"] == ["agent.finished"]
    assert received["*"] == [
        "run.created", "agent.started", "agent.finished", "run.failed", "hook.failed"
    ]
    bus.close()


def test_unknown_event_pattern_or_name_is_rejected() -> None:
    bus = EventBus()
    with pytest.raises(UsageError, match=r"'run.finishd' matches no event"):
        bus.subscribe(print, event="run.finishd")
    with pytest.raises(UsageError, match=r"'agents.*' matches no event"):
        ShellHook("true", event="agents.*")
    with pytest.raises(ValueError, match=r"unknown event 'run.done'"):
        bus.emit("run.done", "run-1")


def test_user_hooks_run_in_emit_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = tmp_path / "order.log"
    module = write_hook_module(
        tmp_path,
        monkeypatch,
        "def record(event):\n"
        f"    with open({str(log)!r}, 'a') as f:\n"
        "        f.write(f\"py {event.data['n']}\\n\")\n",
    )
    bus = EventBus()
    bus.add_user_hook(PythonHook(f"{module}:record"))
    bus.add_user_hook(
        ShellHook(
            f'"{sys.executable}" -c '
            '\'import json,sys; print("sh", json.load(sys.stdin)["data"]["n"])\''
            f' >> "{log}"'
        )
    )
    for n in range(4):
        bus.emit("agent.finished", "run-1", n=n)
    bus.close()

    assert log.read_text().splitlines() == [
        line for n in range(4) for line in (f"py {n}", f"sh {n}")
    ]


def test_close_reports_hooks_that_never_ran_and_interrupts_the_running_one() -> None:
    marker = f"300.{uuid.uuid4().int % 10**9:09d}"
    errors = ErrorLog()
    bus = EventBus(on_hook_error=errors)
    bus.add_user_hook(ShellHook(f"sleep {marker}", timeout_s=30))
    for name in ("run.created", "run.state_changed", "run.finished"):
        bus.emit(name, "run-1")

    started = time.monotonic()
    bus.close(timeout_s=0.3)
    assert time.monotonic() - started < 2.0

    reports = errors.wait_for(3)
    by_event = {event.name: message for _, message, event in reports}
    assert by_event["run.state_changed"] == NOT_RUN_BUS_CLOSED
    assert by_event["run.finished"] == NOT_RUN_BUS_CLOSED
    assert by_event["run.created"].startswith("interrupted, bus closed: killed by signal 9")
    assert bus.pending() == 0
    assert live_processes_with(marker) == []

    bus.emit("run.failed", "run-1")
    assert errors.wait_for(4)[-1][1:] == (NOT_RUN_BUS_CLOSED, errors.reports[-1][2])
    assert errors.reports[-1][2].name == "run.failed"


def test_hook_errors_without_a_reporter_do_not_raise(caplog: pytest.LogCaptureFixture) -> None:
    bus = EventBus()
    bus.add_user_hook(ShellHook("exit 5"))
    bus.emit("run.finished", "run-1")
    bus.close()
    assert "exited with status 5" in caplog.text


def test_build_user_hooks_from_config_specs() -> None:
    specs = [
        SimpleNamespace(event="run.*", command="true", entry_point=None, timeout_s=2.5),
        SimpleNamespace(event="*", command=None, entry_point="json:dumps", timeout_s=None),
    ]
    shell, python = build_user_hooks(specs)
    assert isinstance(shell, ShellHook)
    assert (shell.command, shell.event, shell.timeout_s) == ("true", "run.*", 2.5)
    assert isinstance(python, PythonHook)
    assert (python.entry_point, python.event, python.timeout_s) == ("json:dumps", "*", 10.0)

    both = SimpleNamespace(event="*", command="true", entry_point="json:dumps", timeout_s=1)
    with pytest.raises(UsageError, match="exactly one of 'command' or 'entry_point'"):
        build_user_hooks([both])


def test_event_json_is_stable_and_timestamped_in_utc() -> None:
    event = Event("run.created", "run-1", data={"b": 1, "a": {"z": 2, "y": 3}})
    text = event.to_json()
    assert text == event.to_json()
    assert text.index('"a"') < text.index('"b"') and text.index('"y"') < text.index('"z"')
    assert json.loads(text)["tenant_id"] == "default"
    assert datetime.fromisoformat(event.at).utcoffset() == timedelta(0)
    assert set(EVENT_NAMES) >= {"run.created", "hook.failed", "model.called"}
