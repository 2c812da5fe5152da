"""The executor: ``Sandbox.run`` prepares a run, starts it under the launcher and supervises it.

Supervision reads the output under its cap, watches the timeout, the cancel event and the cgroup
(or, without one, counts the tree), kills the whole tree on the first limit reached, and after the
command counts and kills whatever it left behind.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import selectors
import shutil
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aigentflow.sandbox import commands
from aigentflow.sandbox.cgroups import Cgroup, run_cgroup_name
from aigentflow.sandbox.env import (
    DEFAULT_ENV_ALLOWLIST,
    scrub_environment,
    withheld_names,
)
from aigentflow.sandbox.filesystem import bwrap_argv
from aigentflow.sandbox.launcher import launcher_argv
from aigentflow.sandbox.output import Output
from aigentflow.sandbox.probe import NET_FLAGS, PID_FLAGS, Features, probe
from aigentflow.sandbox.records import ExecResult, KilledReason, Limits, SandboxRefused
from aigentflow.sandbox.tree import Tree, stop

logger = logging.getLogger(__name__)

RUN_MARKER = "AIGENTFLOW_SANDBOX_RUN"
"""Set in every run's environment to a fresh id: a last-resort way to find its processes."""

DISABLE_CHOICES = frozenset({"namespaces", "cgroups", "filesystem"})
ALLOW_UNCONFINED_KEY = "build.sandbox_allow_unconfined"

_TICK_S = 0.1
_WATCHDOG_TICK_S = 0.02
_DRAIN_S = 2.0


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
    features: Features, network: bool, limits: Limits, version: int | None, pids: bool, memory: bool
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
    if features.bwrap:
        namespaces = "bwrap"
    elif not features.unshare:
        namespaces = "none"
    else:
        namespaces = "unshare --user" if "--user" in features.unshare else "unshare"
    return {
        "filesystem": "bwrap" if features.bwrap else "unconfined",
        "network": "namespace" if (features.bwrap or features.net) and not network else "none",
        "pid_namespace": "yes" if features.bwrap or features.pid else "no",
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
    cgroup: Cgroup | None
    isolation: dict[str, str]
    timeout_s: float
    marker: bytes


class Sandbox:
    """Runs commands inside ``root`` with the limits and the isolation this machine allows.

    The environment is ``env_allowlist``, plus the variables ``env_passthrough`` names (exact names,
    or globs such as ``MYAPP_*``), plus ``extra_env``; minus anything whose name or value looks secret.
    ``disable`` turns off "namespaces", "cgroups" or "filesystem" (to debug, or for a tool that
    breaks in them). Only the root and ``writable`` (plus a private HOME and TMPDIR) can be written;
    where the filesystem cannot be confined (no working bubblewrap) commands are refused unless
    ``allow_unconfined``.
    """

    def __init__(
        self,
        root: Path,
        *,
        limits: Limits = Limits(),  # noqa: B008 (frozen)
        env_allowlist: Iterable[str] = DEFAULT_ENV_ALLOWLIST,
        extra_env: Mapping[str, str] | None = None,
        env_passthrough: Iterable[str] = (),
        network: bool = False,
        disable: Iterable[str] = (),
        allow_unconfined: bool = False,
        writable: Iterable[Path] = (),
    ) -> None:
        self.root = _existing_directory(root)
        self.allow_unconfined = allow_unconfined
        self.writable = tuple(_existing_directory(path) for path in writable)
        self.limits = limits
        self.network = network
        self.disabled = frozenset(disable)
        if unknown := self.disabled - DISABLE_CHOICES:
            raise SandboxRefused(
                f"cannot disable {sorted(unknown)}: choose from {sorted(DISABLE_CHOICES)}"
            )
        self.base_env, self.env_refused = scrub_environment(os.environ, env_allowlist, extra_env, env_passthrough)
        if self.env_refused:
            logger.warning("sandbox: not passing %s: name or value looks secret", ", ".join(self.env_refused))
        self.env_withheld = withheld_names(os.environ, self.base_env, self.env_refused)

    def isolation(self) -> dict[str, str]:
        """What confines this sandbox's commands on this machine (probed once per process)."""
        features = probe(self.disabled)
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
            features = probe(self.disabled)
            if features.bwrap is None and not self.allow_unconfined:
                raise SandboxRefused(unconfined_refusal(features.unconfined_because))
            if features.cgroups is not None:
                cgroup = Cgroup.create(features.cgroups, self.limits, run_cgroup_name(run_id))
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
        self, argv: list[str], workdir: Path, scratch: Path, cgroup: Cgroup | None,
        features: Features, run_id: str, timeout_s: float | None,
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
        if features.bwrap:
            view = bwrap_argv(features.bwrap, self.root, workdir, [scratch, *self.writable], procs,
                              network=self.network, path_env=env.get("PATH", ""))  # fmt: skip
            full_argv = [*view, *launcher_argv(procs, rlimits, scratch / "status", reaper=False), *argv]
        else:
            launcher = launcher_argv(procs, rlimits, scratch / "status", reaper=not features.pid)
            flags = [*(NET_FLAGS if features.net and not self.network else ()),
                     *(PID_FLAGS if features.pid else ())]  # fmt: skip
            full_argv = [*features.unshare, *flags, "--", *launcher, *argv] if flags else [*launcher, *argv]
        marker = f"{RUN_MARKER}={run_id}\0".encode()
        return _Launch(argv, full_argv, workdir, env, scratch, cgroup, isolation, timeout, marker)

    def _rlimits(self, timeout_s: float, cgroup: Cgroup | None, processes: str) -> dict[str, int]:
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
        output = Output(self.limits.max_output_bytes)
        stdin_path = launch.scratch / "stdin"
        started_ns, started = time.time_ns(), time.monotonic()
        with open(stdin_path if stdin_path.exists() else os.devnull, "rb") as stdin_file:
            proc = subprocess.Popen(
                launch.full_argv, cwd=launch.workdir, env=launch.env, stdin=stdin_file,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
            )  # fmt: skip
        tree = Tree(proc.pid, launch.marker, launch.cgroup)
        try:
            reason = self._supervise(proc, tree, output, started + launch.timeout_s, cancel_event)
        finally:
            if proc.poll() is None:
                stop(proc, tree)
            leftover = tree.clean_up()
            duration = time.monotonic() - started
        exit_code = _exit_code(launch.scratch / "status", proc.returncode, reason)
        cgroup = launch.cgroup
        if reason is None and cgroup is not None and cgroup.memory_limit_hit():
            reason = "memory_limit"
        elif reason is None and exit_code != 0 and cgroup is not None and cgroup.process_limit_hit():
            reason = "process_limit"
        result = ExecResult(
            argv=launch.argv, cwd=launch.workdir.relative_to(self.root).as_posix(),
            exit_code=exit_code, stdout=output.text("stdout"), stderr=output.text("stderr"),
            output_truncated=output.truncated, duration_s=round(duration, 3), killed_reason=reason,
            isolation=launch.isolation, leftover_processes=leftover,
            env_withheld=list(self.env_withheld), env_refused=list(self.env_refused), started_ns=started_ns,
        )  # fmt: skip
        commands.note(result)
        return result

    def _supervise(
        self, proc: subprocess.Popen[bytes], tree: Tree, output: Output, deadline: float,
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
                        stop(proc, tree)
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
                        stop(proc, tree)
                        give_up_at = time.monotonic() + _DRAIN_S
        proc.stdout.close()
        proc.stderr.close()
        return reason

    def _limit_reached(self, tree: Tree, watchdog: bool) -> KilledReason | None:
        cgroup = tree.cgroup
        if cgroup is not None and cgroup.process_limit_hit():
            return "process_limit"
        if cgroup is not None and cgroup.memory_limit_hit():
            return "memory_limit"
        if watchdog and len(tree.members(thorough=False)) >= (self.limits.max_processes or 0):
            return "process_limit"
        return None


def unconfined_refusal(why: str) -> str:
    """The message refusing to run agents' commands with the user's whole filesystem open to them."""
    return (f"sandboxed commands cannot be confined to the worktree on this machine: {why}. Without it, "
            "code an agent wrote could read your secrets (~/.ssh, ~/.aws, other projects) and write "
            "anywhere you can. Install bubblewrap (Debian/Ubuntu: `apt-get install bubblewrap`; Fedora: "
            "`dnf install bubblewrap`), or accept the risk with "
            f"`aigentflow config set {ALLOW_UNCONFINED_KEY} true`")


def check_confinement(allow_unconfined: bool, disable: Iterable[str] = ()) -> str:
    """How this machine confines commands' filesystem ("bwrap", or "unconfined" when allowed);
    ``SandboxRefused`` when it cannot and the user has not opted in."""
    features = probe(frozenset(disable))
    if features.bwrap is None and not allow_unconfined:
        raise SandboxRefused(unconfined_refusal(features.unconfined_because))
    return "bwrap" if features.bwrap else "unconfined"


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
