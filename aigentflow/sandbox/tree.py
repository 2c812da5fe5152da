"""Finding and killing a run's processes: by its cgroup, else by session, descent and marker.

Every kill checks the process's start time first, so that a reused pid is never signalled.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aigentflow.sandbox.cgroups import Cgroup

logger = logging.getLogger(__name__)

_CLEANUP_S = 3.0


def stat(pid: int) -> tuple[int, int, int, int] | None:
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


def signal_pid(pid: int, start_time: int | None) -> None:
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
        current = stat(pid)
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


class Tree:
    """The processes of one run: its cgroup, else its session, descendants and marked environment."""

    def __init__(self, top: int, marker: bytes, cgroup: Cgroup | None) -> None:
        self.top = top
        self.marker = marker
        self.cgroup = cgroup

    def members(self, thorough: bool) -> dict[int, int]:
        """pid -> start time of every live member; ``thorough`` also reads every environment."""
        if self.cgroup is not None:
            found = {pid: stat(pid) for pid in self.cgroup.pids()}
            return {pid: info[3] for pid, info in found.items() if info is not None}
        stats: dict[int, tuple[int, int, int, int]] = {}
        for name in os.listdir("/proc"):
            if name.isdigit() and (info := stat(int(name))) is not None:
                stats[int(name)] = info
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
            signal_pid(pid, start_time)

    def clean_up(self, wait_s: float = _CLEANUP_S) -> int:
        """Kill until none is left; the number still alive after ``wait_s`` (0 when all went)."""
        deadline = time.monotonic() + wait_s
        while True:
            members = self.members(thorough=True)
            if not members or time.monotonic() > deadline:
                return len(members)
            for pid, start_time in members.items():
                signal_pid(pid, start_time)
            if self.cgroup is not None:
                self.cgroup.kill()
            time.sleep(0.01)


def stop(proc: subprocess.Popen[bytes], tree: Tree) -> None:
    """Kill the top first (unshare: its PID namespace dies with it), then the rest of the tree."""
    if proc.poll() is None:
        proc.kill()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
    tree.kill()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        logger.warning("sandbox: process %d did not die after SIGKILL", proc.pid)
