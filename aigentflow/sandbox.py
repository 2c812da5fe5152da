"""The one executor every command an agent runs goes through: tests, builds, linters, formatters.

A run is confined in layers, each used when this machine allows it and reported in
``ExecResult.isolation``:
- working directory inside the sandbox root; environment scrubbed to an allowlist, with HOME and
  TMPDIR in a scratch directory removed afterwards;
- ``unshare``: no network (``--net``) and a PID namespace, so that ending the command ends every
  process it started, daemons included (as root, or through an unprivileged user namespace);
- a cgroup (v1, or v2 when delegated) for the process count and the memory of the whole tree,
  else per-process rlimits and a watchdog that counts the tree;
- a timeout, a cap on combined output and a cancel event, each of which kills the whole tree;
- after the command, everything it left is killed and counted (``leftover_processes``): found by
  cgroup, else by session, descent and the ``AIGENTFLOW_SANDBOX_RUN`` id set in its environment.

No ``preexec_fn`` (unsafe in threaded Ray workers): a tiny launcher joins the cgroup, sets the
rlimits and runs the command as its child, which it reaps like an init. Not a security boundary
against hostile root code; it keeps agents' commands from leaking, hanging or flooding.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import logging
import math
import os
import re
import selectors
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from aigentflow.exceptions import UsageError
from aigentflow.redact import KEY_PATTERNS, looks_secret_name

logger = logging.getLogger(__name__)

GiB = 1 << 30
MiB = 1 << 20

DEFAULT_ENV_ALLOWLIST = (
    "PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TERM", "TZ", "TMPDIR", "USER", "LOGNAME",
    "SHELL", "PYTHONDONTWRITEBYTECODE", "PYTHONHASHSEED", "PYTHONUNBUFFERED", "CI", "NO_COLOR",
)  # fmt: skip
NEVER_INHERITED = frozenset({
    "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV", "LD_PRELOAD", "LD_LIBRARY_PATH",
    "LD_AUDIT", "BASH_ENV", "ENV",
})  # fmt: skip
"""Passed only when given in ``extra_env``, even if allowlisted: they change what code runs."""

RUN_MARKER = "AIGENTFLOW_SANDBOX_RUN"
"""Set in every run's environment to a fresh id: a last-resort way to find its processes."""

DISABLE_CHOICES = frozenset({"namespaces", "cgroups"})

KilledReason = Literal["timeout", "output_limit", "process_limit", "memory_limit", "cancelled"]

_NET_FLAGS = ("--net",)
_PID_FLAGS = ("--pid", "--fork", "--kill-child", "--mount-proc")
_TICK_S = 0.1
_WATCHDOG_TICK_S = 0.02
_DRAIN_S = 2.0
_CLEANUP_S = 3.0


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

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and self.killed_reason is None

    def to_record(self) -> dict[str, Any]:
        """A JSON-able dict, for storing on a step."""
        return {**asdict(self), "ok": self.ok}

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


def command_line(command: str | Sequence[str]) -> str:
    """The command as a user would type it."""
    return command if isinstance(command, str) else shlex.join(str(arg) for arg in command)


# Runs as ``python -I -S -c LAUNCHER_CODE key=value... -- argv``: stdlib C modules only, ~10 ms.
LAUNCHER_CODE = r"""
import os, sys, resource, _signal
split = sys.argv.index("--")
argv, status_path, reap = sys.argv[split + 1:], None, False
try:
    for key, _, value in (arg.partition("=") for arg in sys.argv[1:split]):
        if key == "cgroup":
            with open(value, "w") as procs:
                procs.write("0")
        elif key == "rlimit":
            name, _, limit = value.partition(":")
            kind = getattr(resource, "RLIMIT_" + name)
            hard = resource.getrlimit(kind)[1]
            limit = int(limit) if hard == resource.RLIM_INFINITY else min(int(limit), hard)
            resource.setrlimit(kind, (limit, limit))
        elif key == "status":
            status_path = value
        elif key == "reaper":
            import ctypes
            reap = ctypes.CDLL(None).prctl(36, 1, 0, 0, 0) == 0
except (OSError, ValueError) as exc:
    sys.stderr.write(f"aigentflow sandbox: setup failed: {exc}\n")
    os._exit(125)
child = os.fork()
if child == 0:
    _signal.signal(_signal.SIGPIPE, _signal.SIG_DFL)
    _signal.signal(_signal.SIGXFSZ, _signal.SIG_DFL)
    try:
        os.execvp(argv[0], argv)
    except OSError as exc:
        sys.stderr.write(f"aigentflow sandbox: cannot run {argv[0]!r}: {exc.strerror}\n")
    os._exit(127)
while True:
    pid, status = os.wait()
    if pid == child:
        break
with open(status_path, "w") as out:
    out.write(str(status))
while reap:
    try:
        with open(f"/proc/self/task/{os.getpid()}/children") as listing:
            orphans = [int(pid) for pid in listing.read().split()]
    except OSError:
        break
    for pid in orphans:
        try:
            os.kill(pid, 9)
        except OSError:
            pass
    try:
        os.wait()
    except ChildProcessError:
        break
code = os.waitstatus_to_exitcode(status)
os._exit(code if code >= 0 else 128 - code)
"""


# --- What this machine allows ----------------------------------------------------------------


@dataclass(frozen=True)
class _CgroupLayout:
    """Where this process's cgroups are: run cgroups are created as their children."""

    version: int
    pids: Path | None
    memory: Path | None


@dataclass(frozen=True)
class _Features:
    unshare: tuple[str, ...] = ()
    net: bool = False
    pid: bool = False
    cgroups: _CgroupLayout | None = None


def _succeeds(argv: Sequence[str], env: Mapping[str, str] | None = None) -> bool:
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, env=env, timeout=10, check=False)  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def _probe_namespaces() -> tuple[tuple[str, ...], bool, bool]:
    unshare, true = shutil.which("unshare"), shutil.which("true")
    if unshare is None or true is None:
        return (), False, False
    prefixes = [[unshare, "--user", "--map-root-user"]]
    if os.geteuid() == 0:
        prefixes.insert(0, [unshare])
    for prefix in prefixes:
        if _succeeds([*prefix, *_NET_FLAGS, *_PID_FLAGS, true]):
            return tuple(prefix), True, True
        net, pid = _succeeds([*prefix, *_NET_FLAGS, true]), _succeeds([*prefix, *_PID_FLAGS, true])
        if net or pid:
            return tuple(prefix), net, pid
    return (), False, False


def _cgroup_dir(mount_point: str, mount_root: str, path: str) -> Path:
    return Path(mount_point) / path.removeprefix(mount_root).lstrip("/")


def _find_cgroup_layout() -> _CgroupLayout | None:
    try:
        cgroup_lines = Path("/proc/self/cgroup").read_text().splitlines()
        mount_lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return None
    memberships = [line.split(":", 2) for line in cgroup_lines if line.count(":") >= 2]
    v1: dict[str, Path] = {}
    v2: Path | None = None
    for fields in (line.split() for line in mount_lines):
        mount_root, mount_point = fields[3], fields[4]
        fstype, *_, options = fields[fields.index("-") + 1 :][:3]
        for _, controllers, path in memberships:
            if fstype == "cgroup2" and controllers == "":
                v2 = _cgroup_dir(mount_point, mount_root, path)
            elif fstype == "cgroup":
                for controller in ("pids", "memory"):
                    if controller in options.split(",") and controller in controllers.split(","):
                        v1[controller] = _cgroup_dir(mount_point, mount_root, path)
    if v1:
        return _CgroupLayout(1, v1.get("pids"), v1.get("memory"))
    if v2 is None:
        return None
    try:
        available = (v2 / "cgroup.controllers").read_text().split()
    except OSError:
        return None
    pids, memory = ("pids" in available), ("memory" in available)
    return _CgroupLayout(2, v2 if pids else None, v2 if memory else None) if pids or memory else None


def _probe_cgroups() -> _CgroupLayout | None:
    """The layout, if a child cgroup can be made and a launched process can join it."""
    layout = _find_cgroup_layout()
    if layout is None:
        return None
    cgroup = _Cgroup.create(layout, Limits(), f"aigentflow-probe-{uuid.uuid4().hex[:12]}")
    if cgroup is None:
        return None
    try:
        status = Path(tempfile.mkdtemp(prefix="aigentflow-probe-")) / "status"
        argv = _launcher_argv(cgroup.procs_files(), {}, status, reaper=False)
        joined = _succeeds([*argv, sys.executable, "-I", "-S", "-c", "pass"], env={})
        shutil.rmtree(status.parent, ignore_errors=True)
        if not joined:
            return None
        return _CgroupLayout(
            layout.version,
            layout.pids if "pids" in cgroup.dirs else None,
            layout.memory if "memory" in cgroup.dirs else None,
        )
    finally:
        cgroup.remove()


@functools.lru_cache(maxsize=8)
def _probe(disabled: frozenset[str]) -> _Features:
    """What this machine gives, found once per process (a few short process starts)."""
    unshare, net, pid = ((), False, False) if "namespaces" in disabled else _probe_namespaces()
    cgroups = None if "cgroups" in disabled else _probe_cgroups()
    return _Features(unshare, net, pid, cgroups)


# --- One run's cgroup ------------------------------------------------------------------------


def _write(path: Path, value: str) -> None:
    with open(path, "w") as file:
        file.write(value)


def _counter(path: Path, name: str) -> int:
    """The value of ``name`` in a flat keyed file (pids.events, memory.events), 0 if absent."""
    try:
        for line in path.read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == name:
                return int(value)
    except (OSError, ValueError):
        pass
    return 0


class _Cgroup:
    """One run's cgroup directories: v1 one per controller, v2 one for both."""

    def __init__(self, version: int, dirs: dict[str, Path], made: list[Path]) -> None:
        self.version = version
        self.dirs = dirs
        self.made = made

    @classmethod
    def create(cls, layout: _CgroupLayout, limits: Limits, name: str) -> _Cgroup | None:
        dirs: dict[str, Path] = {}
        made: list[Path] = []
        wanted = (
            ("pids", layout.pids, limits.max_processes),
            ("memory", layout.memory, limits.memory_bytes),
        )
        for controller, parent, limit in wanted:
            if parent is None or limit is None:
                continue
            path = parent / name
            try:
                if path not in made:
                    path.mkdir()
                    made.append(path)
                cls._limit(layout.version, parent, path, controller, limit)
                dirs[controller] = path
            except OSError as exc:
                logger.debug("cgroup %s not usable for %s: %s", path, controller, exc)
        cgroup = cls(layout.version, dirs, made)
        if not dirs:
            cgroup.remove()
            return None
        return cgroup

    @staticmethod
    def _limit(version: int, parent: Path, path: Path, controller: str, limit: int) -> None:
        if version == 2 and not (path / f"{controller}.max").exists():
            _write(parent / "cgroup.subtree_control", f"+{controller}")  # EBUSY unless delegated
        if controller == "pids":
            _write(path / "pids.max", str(limit))
        elif version == 1:
            _write(path / "memory.limit_in_bytes", str(limit))
            try:
                _write(path / "memory.memsw.limit_in_bytes", str(limit))  # no escape to swap
            except OSError:
                pass
        else:
            _write(path / "memory.max", str(limit))
            try:
                _write(path / "memory.swap.max", "0")
            except OSError:
                pass

    def procs_files(self) -> list[str]:
        return [str(path / "cgroup.procs") for path in dict.fromkeys(self.dirs.values())]

    def pids(self) -> set[int]:
        found: set[int] = set()
        for procs in self.procs_files():
            try:
                found.update(int(pid) for pid in Path(procs).read_text().split())
            except (OSError, ValueError):
                pass
        return found

    def process_limit_hit(self) -> bool:
        return "pids" in self.dirs and _counter(self.dirs["pids"] / "pids.events", "max") > 0

    def memory_limit_hit(self) -> bool:
        if "memory" not in self.dirs:
            return False
        path = self.dirs["memory"]
        events = path / ("memory.oom_control" if self.version == 1 else "memory.events")
        return _counter(events, "oom_kill") > 0

    def kill(self) -> None:
        if self.version == 2:
            for path in set(self.dirs.values()):
                with contextlib.suppress(OSError):
                    _write(path / "cgroup.kill", "1")  # Linux 5.14+
        for pid in self.pids():
            _signal_pid(pid, None)

    def remove(self) -> None:
        """rmdir every directory made; waits briefly for killed tasks to be gone."""
        for path in reversed(self.made):
            for _ in range(100):
                try:
                    path.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError as exc:
                    if exc.errno != errno.EBUSY:
                        logger.warning("could not remove cgroup %s: %s", path, exc)
                        break
                    self.kill()
                    time.sleep(0.01)
            else:
                logger.warning("cgroup %s still busy after cleanup; left in place", path)


# --- Finding and killing a run's processes ---------------------------------------------------


def _stat(pid: int) -> tuple[int, int, int, int] | None:
    """(ppid, process group, session, start time) of a live process; None if gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            data = file.read()
    except OSError:
        return None
    fields = data[data.rindex(b")") + 2 :].split()
    if fields[0] in (b"Z", b"X"):
        return None
    return int(fields[1]), int(fields[2]), int(fields[3]), int(fields[19])


def _signal_pid(pid: int, start_time: int | None) -> None:
    """SIGKILL ``pid`` if it is still the process seen (same start time): no pid-reuse accident."""
    if pid == os.getpid():
        return
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return
    except OSError:
        pidfd = None
    try:
        current = _stat(pid)
        if current is None or (start_time is not None and current[3] != start_time):
            return
        if pidfd is None:
            os.kill(pid, signal.SIGKILL)
        else:
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    finally:
        if pidfd is not None:
            os.close(pidfd)


def _has_marker(pid: int, marker: bytes) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as file:
            return marker in file.read()
    except OSError:
        return False


class _Tree:
    """The processes of one run: its cgroup, else its session, descendants and marked environment."""

    def __init__(self, top: int, marker: bytes, cgroup: _Cgroup | None) -> None:
        self.top = top
        self.marker = marker
        self.cgroup = cgroup

    def members(self, thorough: bool) -> dict[int, int]:
        """pid -> start time of every live member; ``thorough`` also reads every environment."""
        if self.cgroup is not None:
            found = {pid: _stat(pid) for pid in self.cgroup.pids()}
            return {pid: stat[3] for pid, stat in found.items() if stat is not None}
        stats: dict[int, tuple[int, int, int, int]] = {}
        for name in os.listdir("/proc"):
            if name.isdigit() and (stat := _stat(int(name))) is not None:
                stats[int(name)] = stat
        members = {pid for pid, (_, group, session, _) in stats.items() if self.top in (group, session)}
        children: dict[int, list[int]] = {}
        for pid, (parent, *_) in stats.items():
            children.setdefault(parent, []).append(pid)
        stack = [self.top]
        while stack:
            for child in children.get(stack.pop(), ()):
                if child not in members:
                    members.add(child)
                    stack.append(child)
        if thorough:
            members.update(pid for pid in stats if pid not in members and _has_marker(pid, self.marker))
        members.discard(os.getpid())
        return {pid: stats[pid][3] for pid in members}

    def kill(self, thorough: bool = False) -> None:
        if self.cgroup is not None:
            self.cgroup.kill()
        for pid, start_time in self.members(thorough).items():
            _signal_pid(pid, start_time)

    def clean_up(self, wait_s: float = _CLEANUP_S) -> int:
        """Kill until none is left; the number still alive after ``wait_s`` (0 when all went)."""
        deadline = time.monotonic() + wait_s
        while True:
            members = self.members(thorough=True)
            if not members or time.monotonic() > deadline:
                return len(members)
            for pid, start_time in members.items():
                _signal_pid(pid, start_time)
            if self.cgroup is not None:
                self.cgroup.kill()
            time.sleep(0.01)


# --- Output capture --------------------------------------------------------------------------


class _Output:
    """stdout and stderr under one combined cap: the head and the tail of each are kept."""

    def __init__(self, limit: int) -> None:
        self.limit = max(limit, 0)
        self.seen = {"stdout": 0, "stderr": 0}
        self.head = {"stdout": bytearray(), "stderr": bytearray()}
        self.tail = {"stdout": bytearray(), "stderr": bytearray()}

    @property
    def total(self) -> int:
        return self.seen["stdout"] + self.seen["stderr"]

    @property
    def truncated(self) -> bool:
        return self.total > self.limit

    def add(self, stream: str, data: bytes) -> bool:
        """Keep ``data``; whether the cap is now exceeded."""
        self.seen[stream] += len(data)
        head, tail = self.head[stream], self.tail[stream]
        room = self.limit - len(head)
        if room > 0:
            head += data[:room]
            data = data[room:]
        if data:
            tail += data
            if len(tail) > self.limit:
                del tail[: len(tail) - self.limit]
        return self.truncated

    def text(self, stream: str) -> str:
        """The stream decoded; when over the cap, its share of it as head, marker, tail."""
        seen, limit = self.seen, self.limit
        budget = {"stdout": seen["stdout"], "stderr": seen["stderr"]}
        if self.truncated:
            budget["stdout"] = min(seen["stdout"], max(limit // 2, limit - seen["stderr"]))
            budget["stderr"] = min(seen["stderr"], limit - budget["stdout"])
        return self._render(stream, budget[stream])

    def _render(self, stream: str, budget: int) -> str:
        head, tail, seen = self.head[stream], self.tail[stream], self.seen[stream]
        if seen <= budget:
            return bytes(head + tail).decode(errors="replace")
        keep_head = budget // 2
        contiguous = seen == len(head) + len(tail)
        end = head + tail if contiguous else tail
        last = end[len(end) - (budget - keep_head) :] if budget > keep_head else b""
        cut = seen - keep_head - len(last)
        return (
            bytes(head[:keep_head]).decode(errors="replace")
            + f"\n[... {cut} bytes cut ...]\n"
            + bytes(last).decode(errors="replace")
        )


# --- Environment -----------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _key_shapes() -> tuple[tuple[tuple[str, ...], re.Pattern[str]], ...]:
    return tuple((triggers, re.compile(pattern)) for triggers, pattern in KEY_PATTERNS.values())


def looks_like_credential(value: str) -> bool:
    """Whether a value has the shape of a provider key, token or URL with a password in it."""
    return any(
        any(trigger in value for trigger in triggers) and pattern.search(value)
        for triggers, pattern in _key_shapes()
    )


def scrub_environment(
    source: Mapping[str, str], allowlist: Iterable[str], extra_env: Mapping[str, str] | None
) -> tuple[dict[str, str], list[str]]:
    """(the environment a run gets, the names dropped because they look secret)."""
    env = {name: source[name] for name in allowlist if name in source and name not in NEVER_INHERITED}
    env.update(extra_env or {})
    dropped = sorted(name for name, value in env.items() if looks_secret_name(name) or looks_like_credential(value))
    for name in dropped:
        del env[name]
    return env, dropped


# --- The executor ----------------------------------------------------------------------------


def _launcher_argv(
    cgroup_procs: Iterable[str], rlimits: Mapping[str, int], status: Path, reaper: bool
) -> list[str]:
    options = [f"cgroup={procs}" for procs in cgroup_procs]
    options += [f"rlimit={name}:{value}" for name, value in rlimits.items()]
    options += [f"status={status}", *(["reaper=1"] if reaper else [])]
    return [sys.executable, "-I", "-S", "-c", LAUNCHER_CODE, *options, "--"]


def _user_task_count() -> int:
    """Tasks (threads included) of this real user: what RLIMIT_NPROC counts."""
    uid, count = os.getuid(), 0
    for name in os.listdir("/proc"):
        try:
            if name.isdigit() and os.stat(f"/proc/{name}").st_uid == uid:
                count += len(os.listdir(f"/proc/{name}/task"))
        except OSError:
            pass
    return count


def _describe(
    features: _Features, network: bool, limits: Limits, version: int | None, pids: bool, memory: bool
) -> dict[str, str]:
    """The isolation dict of a run (values: "none" = not confined that way)."""
    if pids:
        processes = "cgroup"
    else:
        processes = "rlimit" if os.geteuid() != 0 else "watchdog"
    if limits.memory_bytes is None:
        memory_by = "none"
    else:
        memory_by = "cgroup" if memory else "rlimit"
    if not features.unshare:
        namespaces = "none"
    else:
        namespaces = "unshare --user" if "--user" in features.unshare else "unshare"
    return {
        "network": "namespace" if features.net and not network else "none",
        "pid_namespace": "yes" if features.pid else "no",
        "namespaces": namespaces,
        "cgroup": f"v{version}" if version else "none",
        "processes": processes,
        "memory": memory_by,
        "env": "allowlist",
        "cwd": "confined",
    }


@dataclass
class _Launch:
    """One run, ready to start."""

    argv: list[str]
    full_argv: list[str]
    workdir: Path
    env: dict[str, str]
    scratch: Path
    cgroup: _Cgroup | None
    isolation: dict[str, str]
    timeout_s: float
    marker: bytes


class Sandbox:
    """Runs commands inside ``root`` with the limits and the isolation this machine allows.

    ``disable`` turns off "namespaces" or "cgroups" (to debug, or for a tool that breaks in them).
    """

    def __init__(
        self,
        root: Path,
        *,
        limits: Limits = Limits(),
        env_allowlist: Iterable[str] = DEFAULT_ENV_ALLOWLIST,
        extra_env: Mapping[str, str] | None = None,
        network: bool = False,
        disable: Iterable[str] = (),
    ) -> None:
        self.root = _existing_directory(root)
        self.limits = limits
        self.network = network
        self.disabled = frozenset(disable)
        if unknown := self.disabled - DISABLE_CHOICES:
            raise SandboxRefused(
                f"cannot disable {sorted(unknown)}: choose from {sorted(DISABLE_CHOICES)}"
            )
        self.base_env, dropped = scrub_environment(os.environ, env_allowlist, extra_env)
        if dropped:
            logger.warning("sandbox: not passing %s: name or value looks secret", ", ".join(dropped))

    def isolation(self) -> dict[str, str]:
        """What confines this sandbox's commands on this machine (probed once per process)."""
        features = _probe(self.disabled)
        layout = features.cgroups
        return _describe(
            features, self.network, self.limits, layout.version if layout else None,
            bool(layout and layout.pids and self.limits.max_processes is not None),
            bool(layout and layout.memory and self.limits.memory_bytes is not None),
        )  # fmt: skip

    def run(
        self,
        command: str | Sequence[str],
        cwd: str | Path = ".",
        *,
        timeout_s: float | None = None,
        stdin: bytes | None = None,
        cancel_event: threading.Event | None = None,
    ) -> ExecResult:
        """Run ``command`` (a string goes through ``sh -c``); return when it and all it started
        are gone. Raises ``SandboxRefused`` for an empty command or a cwd outside the root."""
        argv = ["sh", "-c", command] if isinstance(command, str) else [str(a) for a in command]
        if not (command.strip() if isinstance(command, str) else argv and argv[0]):
            raise SandboxRefused("empty command: pass a program and its arguments")
        workdir = self._confine(cwd)
        scratch = Path(tempfile.mkdtemp(prefix="aigentflow-run-"))
        cgroup = None
        try:
            run_id = uuid.uuid4().hex
            features = _probe(self.disabled)
            if features.cgroups is not None:
                cgroup = _Cgroup.create(features.cgroups, self.limits, f"aigentflow-{run_id[:16]}")
            launch = self._prepare(argv, workdir, scratch, cgroup, features, run_id, timeout_s)
            if stdin is not None:
                (scratch / "stdin").write_bytes(stdin)
            return self._execute(launch, cancel_event)
        finally:
            if cgroup is not None:
                cgroup.remove()
            shutil.rmtree(scratch, onerror=_force_remove)

    def _confine(self, cwd: str | Path) -> Path:
        where = f"working directory {str(cwd)!r}"
        try:
            resolved = (self.root / cwd).resolve(strict=True)
        except (OSError, RuntimeError) as exc:
            raise SandboxRefused(
                f"{where} cannot be used ({exc}); pass an existing directory inside {self.root}"
            ) from None
        if not resolved.is_relative_to(self.root):
            raise SandboxRefused(
                f"{where} resolves to {resolved}, outside the sandbox root {self.root}: commands "
                "run only inside the worktree; pass a directory inside it"
            )
        if not resolved.is_dir():
            raise SandboxRefused(f"{where} is not a directory; pass a directory inside {self.root}")
        return resolved

    def _prepare(
        self, argv: list[str], workdir: Path, scratch: Path, cgroup: _Cgroup | None,
        features: _Features, run_id: str, timeout_s: float | None,
    ) -> _Launch:  # fmt: skip
        timeout = self.limits.timeout_s if timeout_s is None else timeout_s
        isolation = _describe(
            features, self.network, self.limits, cgroup.version if cgroup else None,
            bool(cgroup and "pids" in cgroup.dirs), bool(cgroup and "memory" in cgroup.dirs),
        )  # fmt: skip
        (scratch / "home").mkdir()
        (scratch / "tmp").mkdir()
        env = {**self.base_env, "HOME": str(scratch / "home"), "TMPDIR": str(scratch / "tmp"),
               RUN_MARKER: run_id}  # fmt: skip
        rlimits = self._rlimits(timeout, cgroup, isolation["processes"])
        procs = cgroup.procs_files() if cgroup else []
        launcher = _launcher_argv(procs, rlimits, scratch / "status", reaper=not features.pid)
        flags = [*(_NET_FLAGS if features.net and not self.network else ()),
                 *(_PID_FLAGS if features.pid else ())]  # fmt: skip
        full_argv = [*features.unshare, *flags, "--", *launcher, *argv] if flags else [*launcher, *argv]
        marker = f"{RUN_MARKER}={run_id}\0".encode()
        return _Launch(argv, full_argv, workdir, env, scratch, cgroup, isolation, timeout, marker)

    def _rlimits(self, timeout_s: float, cgroup: _Cgroup | None, processes: str) -> dict[str, int]:
        limits = self.limits
        cpus = len(os.sched_getaffinity(0)) or 1
        cpu_s = math.ceil(timeout_s * cpus) + 1 if limits.cpu_s is None else limits.cpu_s
        rlimits = {"CORE": 0, "CPU": cpu_s}
        if limits.max_file_bytes is not None:
            rlimits["FSIZE"] = limits.max_file_bytes
        if limits.memory_bytes is not None and (cgroup is None or "memory" not in cgroup.dirs):
            rlimits["AS"] = limits.memory_bytes
        if limits.max_processes is not None and processes == "rlimit":
            rlimits["NPROC"] = _user_task_count() + limits.max_processes
        return rlimits

    def _execute(self, launch: _Launch, cancel_event: threading.Event | None) -> ExecResult:
        output = _Output(self.limits.max_output_bytes)
        stdin_path = launch.scratch / "stdin"
        started = time.monotonic()
        with open(stdin_path if stdin_path.exists() else os.devnull, "rb") as stdin_file:
            proc = subprocess.Popen(
                launch.full_argv, cwd=launch.workdir, env=launch.env, stdin=stdin_file,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
            )  # fmt: skip
        tree = _Tree(proc.pid, launch.marker, launch.cgroup)
        try:
            reason = self._supervise(proc, tree, output, started + launch.timeout_s, cancel_event)
        finally:
            if proc.poll() is None:
                _stop(proc, tree)
            leftover = tree.clean_up()
            duration = time.monotonic() - started
        exit_code = _exit_code(launch.scratch / "status", proc.returncode, reason)
        cgroup = launch.cgroup
        if reason is None and cgroup is not None and cgroup.memory_limit_hit():
            reason = "memory_limit"
        elif reason is None and exit_code != 0 and cgroup is not None and cgroup.process_limit_hit():
            reason = "process_limit"
        return ExecResult(
            argv=launch.argv, cwd=launch.workdir.relative_to(self.root).as_posix(),
            exit_code=exit_code, stdout=output.text("stdout"), stderr=output.text("stderr"),
            output_truncated=output.truncated, duration_s=round(duration, 3), killed_reason=reason,
            isolation=launch.isolation, leftover_processes=leftover,
        )  # fmt: skip

    def _supervise(
        self, proc: subprocess.Popen[bytes], tree: _Tree, output: _Output, deadline: float,
        cancel_event: threading.Event | None,
    ) -> KilledReason | None:  # fmt: skip
        """Read output until the command has exited and both pipes are closed, killing the tree
        when a limit is reached; the reason it was killed, if it was."""
        assert proc.stdout is not None and proc.stderr is not None
        # Without a pids cgroup the tree is counted in /proc: at most ~10% of a core on it.
        pids_cgroup = tree.cgroup is not None and "pids" in tree.cgroup.dirs
        watchdog = not pids_cgroup and bool(self.limits.max_processes)
        tick = _WATCHDOG_TICK_S if watchdog else _TICK_S
        reason: KilledReason | None = None
        next_check = exited_at = give_up_at = 0.0
        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdout.fileno(), selectors.EVENT_READ, "stdout")
            selector.register(proc.stderr.fileno(), selectors.EVENT_READ, "stderr")
            while True:
                now = time.monotonic()
                if reason is None:
                    reason = _stop_requested(now, deadline, cancel_event)
                    if reason is None and now >= next_check:
                        reason = self._limit_reached(tree, watchdog)
                        next_check = now + max(tick, 10 * (time.monotonic() - now))
                    if reason is not None:
                        _stop(proc, tree)
                        give_up_at = now + _DRAIN_S
                wait_s = max(0.0, min(tick, deadline - now))
                if not selector.get_map():
                    if proc.poll() is not None:
                        break
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        proc.wait(wait_s)  # output closed, command still running
                    continue
                if not give_up_at and proc.poll() is not None:
                    exited_at = exited_at or now  # yet the pipes are open: did something outlive it?
                    if now - exited_at > 0.2:
                        tree.kill(thorough=True)
                        give_up_at = now + _DRAIN_S
                if give_up_at and now > give_up_at:
                    break
                for key, _ in selector.select(wait_s):
                    data = os.read(key.fd, 1 << 16)
                    if not data:
                        selector.unregister(key.fd)
                    elif output.add(key.data, data) and reason is None:
                        reason = "output_limit"
                        _stop(proc, tree)
                        give_up_at = time.monotonic() + _DRAIN_S
        proc.stdout.close()
        proc.stderr.close()
        return reason

    def _limit_reached(self, tree: _Tree, watchdog: bool) -> KilledReason | None:
        cgroup = tree.cgroup
        if cgroup is not None and cgroup.process_limit_hit():
            return "process_limit"
        if cgroup is not None and cgroup.memory_limit_hit():
            return "memory_limit"
        if watchdog and len(tree.members(thorough=False)) >= (self.limits.max_processes or 0):
            return "process_limit"
        return None


def _stop_requested(
    now: float, deadline: float, cancel_event: threading.Event | None
) -> KilledReason | None:
    if now >= deadline:
        return "timeout"
    if cancel_event is not None and cancel_event.is_set():
        return "cancelled"
    return None


def _existing_directory(root: Path) -> Path:
    try:
        resolved = Path(root).resolve(strict=True)
    except (OSError, RuntimeError) as exc:
        raise SandboxRefused(
            f"sandbox root {root} cannot be used ({exc}); pass an existing directory"
        ) from None
    if not resolved.is_dir():
        raise SandboxRefused(f"sandbox root {root} is not a directory; pass the worktree's directory")
    return resolved


def _stop(proc: subprocess.Popen[bytes], tree: _Tree) -> None:
    """Kill the top first (unshare: its PID namespace dies with it), then the rest of the tree."""
    if proc.poll() is None:
        proc.kill()
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    tree.kill()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        logger.warning("sandbox: process %d did not die after SIGKILL", proc.pid)


def _exit_code(status_file: Path, returncode: int | None, reason: KilledReason | None) -> int | None:
    """The command's own status as its launcher recorded it; None if the sandbox killed it first."""
    try:
        return os.waitstatus_to_exitcode(int(status_file.read_text()))
    except (OSError, ValueError):
        return None if reason is not None else returncode


def _force_remove(function: Any, path: str, _: Any) -> None:
    """rmtree's error hook: a run may leave read-only directories behind."""
    try:
        os.chmod(os.path.dirname(path), 0o700)
        os.chmod(path, 0o700)
        function(path)
    except OSError:
        pass
