"""What this machine allows: bubblewrap (a confined filesystem), namespaces through ``unshare``,
cgroups a launched process can join.

Probed once per process and set of disabled layers (a few short process starts); probing cgroups
also removes the stale ones that workers killed mid-run left behind.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from aigentflow.sandbox.cgroups import (
    Cgroup,
    CgroupLayout,
    find_cgroup_layout,
    probe_cgroup_name,
    remove_stale_cgroups,
)
from aigentflow.sandbox.filesystem import probe_bwrap
from aigentflow.sandbox.launcher import launcher_argv
from aigentflow.sandbox.records import Limits

NET_FLAGS = ("--net",)
PID_FLAGS = ("--pid", "--fork", "--kill-child", "--mount-proc")


@dataclass(frozen=True)
class Features:
    unshare: tuple[str, ...] = ()
    net: bool = False
    pid: bool = False
    cgroups: CgroupLayout | None = None
    bwrap: str | None = None
    """bubblewrap's path when it works here: the filesystem view, the network and PID namespaces."""
    unconfined_because: str = ""
    """Why commands cannot be confined to the worktree here ("" when bwrap works)."""


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
        if _succeeds([*prefix, *NET_FLAGS, *PID_FLAGS, true]):
            return tuple(prefix), True, True
        net, pid = _succeeds([*prefix, *NET_FLAGS, true]), _succeeds([*prefix, *PID_FLAGS, true])
        if net or pid:
            return tuple(prefix), net, pid
    return (), False, False


def _probe_cgroups() -> CgroupLayout | None:
    """The layout, if a child cgroup can be made and a launched process can join it."""
    layout = find_cgroup_layout()
    if layout is None:
        return None
    remove_stale_cgroups(layout)
    cgroup = Cgroup.create(layout, Limits(), probe_cgroup_name())
    if cgroup is None:
        return None
    try:
        status = Path(tempfile.mkdtemp(prefix="aigentflow-probe-")) / "status"
        argv = launcher_argv(cgroup.procs_files(), {}, status, reaper=False)
        joined = _succeeds([*argv, sys.executable, "-I", "-S", "-c", "pass"], env={})
        shutil.rmtree(status.parent, ignore_errors=True)
        if not joined:
            return None
        return CgroupLayout(
            layout.version,
            layout.pids if "pids" in cgroup.dirs else None,
            layout.memory if "memory" in cgroup.dirs else None,
        )
    finally:
        cgroup.remove()


@functools.lru_cache(maxsize=8)
def probe(disabled: frozenset[str]) -> Features:
    """What this machine gives, found once per process (a few short process starts)."""
    if "namespaces" in disabled or "filesystem" in disabled:
        bwrap, why = None, f"{'namespaces are' if 'namespaces' in disabled else 'filesystem confinement is'} turned off"
    else:
        bwrap, why = probe_bwrap()
    unshare, net, pid = (), False, False
    if bwrap is None and "namespaces" not in disabled:
        unshare, net, pid = _probe_namespaces()
    cgroups = None if "cgroups" in disabled else _probe_cgroups()
    return Features(unshare, net, pid, cgroups, bwrap, why)
