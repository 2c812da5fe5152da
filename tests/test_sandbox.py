"""The sandbox on real processes: limits stop runaway commands and nothing outlives a run.

The limit tests run twice: with everything this machine gives (namespaces, cgroups) and with both
turned off, as on a machine without them (rlimits, session and /proc tracking, watchdog).
"""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from aigentflow.exceptions import UsageError
from aigentflow.sandbox import ExecResult, Limits, Sandbox, SandboxRefused, command_line
from aigentflow.sandbox.cgroups import (
    probe_cgroup_name,
    remove_stale_cgroups,
    run_cgroup_name,
)
from aigentflow.sandbox.probe import probe

PYTHON = sys.executable
ISOLATION_KEYS = {"filesystem", "network", "pid_namespace", "processes", "memory", "env", "cwd"}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    path = tmp_path / "root"
    path.mkdir()
    return path


@pytest.fixture(params=["all", "unshare", "none"], ids=["isolated", "unshare", "degraded"])
def box(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Run with what the machine gives (bubblewrap); with the namespace fallback (no bubblewrap); and
    with namespaces and cgroups turned off. Without bubblewrap the user must opt in to run unconfined."""
    disable = {"all": (), "unshare": ("filesystem",), "none": ("namespaces", "cgroups")}[request.param]
    return {"disable": disable, "allow_unconfined": request.param != "all"}


@pytest.fixture
def marker() -> str:
    return f"aigentflow-test-{uuid.uuid4().hex}"


def processes_with(marker: str) -> list[int]:
    found = []
    for name in os.listdir("/proc"):
        try:
            with open(f"/proc/{name}/cmdline", "rb") as file:
                if marker.encode() in file.read():
                    found.append(int(name))
        except (OSError, ValueError):
            pass
    return found


def assert_cleaned_up(result: ExecResult, marker: str | None = None) -> None:
    assert result.isolation.keys() >= ISOLATION_KEYS
    assert result.leftover_processes == 0
    json.dumps(result.to_record())
    if marker is not None:
        assert processes_with(marker) == [], f"processes left behind: {result.summary()}"


def test_exit_code_and_output_of_a_normal_command(root: Path) -> None:
    result = Sandbox(root).run("echo out; echo err >&2; exit 3")
    assert (result.exit_code, result.stdout, result.stderr) == (3, "out\n", "err\n")
    assert not result.ok and result.killed_reason is None and not result.output_truncated
    assert result.argv == ["sh", "-c", "echo out; echo err >&2; exit 3"] and result.cwd == "."
    assert result.summary().startswith("`echo out; echo err >&2; exit 3` exited 3 in ")
    assert_cleaned_up(result)
    ok = Sandbox(root).run([PYTHON, "-c", "import sys; print(sys.stdin.read())"], stdin=b"fed")
    assert ok.ok and ok.stdout == "fed\n"
    record = json.loads(json.dumps(ok.to_record()))
    assert record["ok"] is True and record["isolation"] == ok.isolation


def test_a_command_that_closes_its_output_is_waited_for(root: Path) -> None:
    result = Sandbox(root).run("echo bye; exec >&- 2>&-; sleep 0.5; exit 5")
    assert (result.exit_code, result.stdout, result.killed_reason) == (5, "bye\n", None)
    assert result.duration_s >= 0.5


def test_a_missing_program_is_reported_not_raised(root: Path) -> None:
    result = Sandbox(root).run(["aigentflow-no-such-program"])
    assert result.exit_code == 127 and "cannot run 'aigentflow-no-such-program'" in result.stderr


def test_environment_is_scrubbed(root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    canary = "sk-canary" + uuid.uuid4().hex
    monkeypatch.setenv("AIGENTFLOW_CANARY_TOKEN", canary)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-" + uuid.uuid4().hex)
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_" + "a" * 36)
    monkeypatch.setenv("PYTHONPATH", "/somewhere")
    monkeypatch.setenv("LD_PRELOAD", "/evil.so")
    sandbox = Sandbox(
        root,
        env_allowlist=["PATH", "GITHUB_TOKEN", "PYTHONPATH", "LD_PRELOAD"],
        extra_env={"HARMLESS_NAME": "sk-" + "b" * 40, "BUILD_MODE": "release", "LD_PRELOAD": ""},
    )
    env = sandbox.run(["env"]).stdout
    names = {line.split("=", 1)[0] for line in env.splitlines()}
    assert canary not in env and "sk-" not in env and "ghp_" not in env
    assert {"OPENAI_API_KEY", "AIGENTFLOW_CANARY_TOKEN", "GITHUB_TOKEN", "PYTHONPATH"}.isdisjoint(names)
    assert {"PATH", "HOME", "TMPDIR", "BUILD_MODE", "LD_PRELOAD"} <= names
    assert f"PATH={os.environ['PATH']}" in env.splitlines()
    assert "LD_PRELOAD=" in env.splitlines(), "an explicit extra_env value is passed"


def test_home_and_tmpdir_are_a_scratch_directory_removed_afterwards(root: Path) -> None:
    result = Sandbox(root).run('echo "$HOME"; echo "$TMPDIR"; touch "$HOME/x" "$TMPDIR/y"')
    home, tmpdir = result.stdout.split()
    assert result.ok
    assert home != os.path.expanduser("~") and not home.startswith(str(Path.home()) + "/")
    assert not Path(home).exists() and not Path(tmpdir).exists()


def test_cwd_is_confined_to_the_root(root: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (root / "sub").mkdir()
    (root / "escape").symlink_to(outside)
    sandbox = Sandbox(root)
    assert sandbox.run("pwd", cwd="sub").stdout.strip() == str(root.resolve() / "sub")
    assert sandbox.run("true", cwd="sub").cwd == "sub"
    for cwd in ("..", str(outside), "escape", "sub/../.."):
        with pytest.raises(SandboxRefused, match="outside the sandbox root") as refused:
            sandbox.run("true", cwd=cwd)
        assert isinstance(refused.value, UsageError) and repr(cwd) in str(refused.value)
    with pytest.raises(SandboxRefused, match="cannot be used"):
        sandbox.run("true", cwd="missing")
    with pytest.raises(SandboxRefused, match=r"does not exist|cannot be used"):
        Sandbox(root / "missing")
    with pytest.raises(SandboxRefused, match="empty command"):
        sandbox.run([])


def test_a_fork_bomb_is_stopped_and_leaves_nothing(root: Path, box: dict[str, Any], marker: str) -> None:
    limits = Limits(timeout_s=5, max_processes=32, memory_bytes=512 << 20)
    bomb = "import os\nwhile True:\n    try: os.fork()\n    except OSError: pass"
    started = time.monotonic()
    result = Sandbox(root, limits=limits, **box).run([PYTHON, "-c", bomb, marker])
    assert time.monotonic() - started < 10
    assert not result.ok
    if result.isolation["processes"] in ("cgroup", "watchdog"):
        assert result.killed_reason == "process_limit", result.summary()
    else:
        assert result.killed_reason in ("process_limit", "timeout")
    assert_cleaned_up(result, marker)


def test_an_infinite_loop_is_killed_at_the_timeout(root: Path, box: dict[str, Any], marker: str) -> None:
    result = Sandbox(root, **box).run(
        f"{shlex.quote(PYTHON)} -c 'while True: pass' {marker} & wait", timeout_s=1
    )
    assert result.killed_reason == "timeout" and result.exit_code is None
    assert 0.9 <= result.duration_s < 3
    assert "stopped: timeout after" in result.summary() and "0 processes left" in result.summary()
    assert_cleaned_up(result, marker)


def test_unbounded_allocation_is_stopped(root: Path, box: dict[str, Any], marker: str) -> None:
    limits = Limits(timeout_s=20, memory_bytes=200 * 1024 * 1024)
    hog = "chunks = []\nwhile True: chunks.append(bytearray(10 * 1024 * 1024))"
    result = Sandbox(root, limits=limits, **box).run([PYTHON, "-c", hog, marker])
    assert not result.ok and (result.exit_code != 0 or result.killed_reason == "memory_limit")
    if result.isolation["memory"] == "cgroup":
        assert result.killed_reason == "memory_limit", result.summary()
    else:
        assert "MemoryError" in result.stderr
    assert_cleaned_up(result, marker)


def test_an_output_flood_is_cut_and_killed(root: Path, box: dict[str, Any]) -> None:
    limits = Limits(timeout_s=20, max_output_bytes=64 * 1024)
    result = Sandbox(root, limits=limits, **box).run(["yes"])
    assert result.killed_reason == "output_limit" and result.output_truncated
    assert "bytes cut ...]" in result.stdout and result.stdout.startswith("y\ny\n")
    assert len(result.stdout) < 64 * 1024 + 100
    assert_cleaned_up(result)


def test_output_over_the_cap_keeps_head_and_tail_of_both_streams(root: Path) -> None:
    script = "for i in $(seq 1 500); do echo out$i; echo err$i >&2; done"
    result = Sandbox(root, limits=Limits(max_output_bytes=2000)).run(script)
    assert result.output_truncated and result.killed_reason == "output_limit"
    assert result.stdout.startswith("out1\n") and result.stderr.startswith("err1\n")
    cut = [stream for stream in (result.stdout, result.stderr) if "bytes cut ...]" in stream]
    assert cut, "the stream over its share keeps its head and tail around a marker"
    assert len(result.stdout) + len(result.stderr) <= 2000 + 2 * 40


def test_a_setsid_daemon_leaves_no_process_behind(root: Path, box: dict[str, Any], marker: str) -> None:
    (root / "daemon.py").write_text(
        "import os, sys, time\n"
        "if sys.argv[1] == 'double-fork':\n"
        "    if os.fork(): os._exit(0)\n"
        "    os.setsid()\n"
        "    if os.fork(): os._exit(0)\n"
        "    os.close(1); os.close(2)\n"
        "time.sleep(300)\n"
    )
    daemon = f"{shlex.quote(PYTHON)} daemon.py"
    script = (
        f"setsid {daemon} plain {marker} & "
        f"(sh -c 'setsid {daemon} nested {marker} &' &); "
        f"env -i {daemon} double-fork {marker}; sleep 0.3; echo started"
    )
    result = Sandbox(root, **box).run(script, timeout_s=20)
    assert result.ok and result.stdout == "started\n", result.stderr
    assert_cleaned_up(result, marker)


def test_cancel_event_kills_the_tree(root: Path, marker: str) -> None:
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    sleeper = [PYTHON, "-c", "import time; time.sleep(30)", marker]
    result = Sandbox(root).run(sleeper, cancel_event=cancel)
    assert result.killed_reason == "cancelled" and result.duration_s < 3
    assert_cleaned_up(result, marker)


def test_network_is_cut_unless_allowed(root: Path) -> None:
    if Sandbox(root).isolation()["network"] == "none":
        pytest.skip("this machine gives no network namespace")
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        port = server.getsockname()[1]
        connect = f"import socket; socket.create_connection(('127.0.0.1', {port}), timeout=3); print('connected')"
        cut = Sandbox(root).run([PYTHON, "-c", connect])
        allowed = Sandbox(root, network=True).run([PYTHON, "-c", connect])
    assert cut.exit_code != 0 and "connected" not in cut.stdout
    assert cut.isolation["network"] == "namespace"
    assert allowed.ok and allowed.stdout == "connected\n", allowed.stderr
    assert allowed.isolation["network"] == "none"


def test_concurrent_runs_from_threads_stay_apart(root: Path) -> None:
    sandbox = Sandbox(root)
    results: dict[int, ExecResult] = {}

    def run(index: int) -> None:
        results[index] = sandbox.run([PYTHON, "-c", f"print({index})"])

    threads = [threading.Thread(target=run, args=(index,)) for index in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert {index: result.stdout for index, result in results.items()} == {i: f"{i}\n" for i in range(4)}


def test_isolation_is_reported_and_degrades(root: Path) -> None:
    full = Sandbox(root).isolation()
    bare = Sandbox(root, disable=["namespaces", "cgroups"]).isolation()
    assert full.keys() >= ISOLATION_KEYS and full["env"] == "allowlist" and full["cwd"] == "confined"
    assert bare["network"] == "none" and bare["pid_namespace"] == "no" and bare["cgroup"] == "none"
    assert bare["processes"] in ("rlimit", "watchdog") and bare["memory"] == "rlimit"
    assert bare["filesystem"] == "unconfined"
    with pytest.raises(SandboxRefused, match="choose from"):
        Sandbox(root, disable=["seccomp"])


def test_command_line_quotes_for_display() -> None:
    assert command_line(["pytest", "-k", "a and b"]) == "pytest -k 'a and b'"
    assert command_line("make test") == "make test"


def test_stale_cgroups_of_killed_workers_are_removed() -> None:
    layout = probe(frozenset({"namespaces"})).cgroups
    if layout is None:
        pytest.skip(
            "this machine offers no writable cgroup: no v1 pids/memory hierarchy and no delegated "
            "v2 cgroup in which this process can make a child that a launched process can join"
        )
    parent = layout.pids or layout.memory
    assert parent is not None
    stale, fresh = parent / run_cgroup_name(uuid.uuid4().hex), parent / run_cgroup_name(uuid.uuid4().hex)
    stale_probe = parent / probe_cgroup_name()
    busy = parent / run_cgroup_name(uuid.uuid4().hex)
    foreign = parent / f"other-{uuid.uuid4().hex[:16]}"
    made = [stale, stale_probe, fresh, busy, foreign]
    sleeper = None
    try:
        for path in made:
            path.mkdir()
        sleeper = subprocess.Popen(["sleep", "60"])
        (busy / "cgroup.procs").write_text(str(sleeper.pid))
        an_hour_ago = time.time() - 3600
        for path in (stale, stale_probe, busy, foreign):
            os.utime(path, (an_hour_ago, an_hour_ago))
        removed = remove_stale_cgroups(layout)
        assert not stale.exists() and not stale_probe.exists()
        assert fresh.is_dir(), "made less than 10 minutes ago: may be a run starting"
        assert busy.is_dir(), "a process is in it"
        assert foreign.is_dir(), "not named by the sandbox"
        assert set(removed) & set(made) <= {stale, stale_probe}
    finally:
        if sleeper is not None:
            sleeper.kill()
            sleeper.wait()
        for path in made:
            for _ in range(100):
                try:
                    path.rmdir()
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.01)  # a killed task leaves its cgroup shortly after
                else:
                    break
