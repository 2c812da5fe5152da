"""Cgroups: where this process's are, one run's (limits, members, kill, removal), stale ones.

A run's cgroup is made as a child of this process's own (v1: one per controller, v2: one for
both) and named ``aigentflow-<16 hex>`` (``aigentflow-probe-<12 hex>`` for the probe's).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import re
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from aigentflow.sandbox.records import Limits
from aigentflow.sandbox.tree import signal_pid

logger = logging.getLogger(__name__)

STALE_AFTER_S = 600.0
"""An empty cgroup of ours this old was left by a worker killed mid-run (runs remove their own)."""

_OUR_NAME = re.compile(r"aigentflow-(?:[0-9a-f]{16}|probe-[0-9a-f]{12})")


def run_cgroup_name(run_id: str) -> str:
    return f"aigentflow-{run_id[:16]}"


def probe_cgroup_name() -> str:
    return f"aigentflow-probe-{uuid.uuid4().hex[:12]}"


@dataclass(frozen=True)
class CgroupLayout:
    """Where this process's cgroups are: run cgroups are created as their children."""

    version: int
    pids: Path | None
    memory: Path | None


def _cgroup_dir(mount_point: str, mount_root: str, path: str) -> Path:
    return Path(mount_point) / path.removeprefix(mount_root).lstrip("/")


def find_cgroup_layout() -> CgroupLayout | None:
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
        return CgroupLayout(1, v1.get("pids"), v1.get("memory"))
    if v2 is None:
        return None
    try:
        available = (v2 / "cgroup.controllers").read_text().split()
    except OSError:
        return None
    pids, memory = ("pids" in available), ("memory" in available)
    return CgroupLayout(2, v2 if pids else None, v2 if memory else None) if pids or memory else None


def remove_stale_cgroups(layout: CgroupLayout, older_than_s: float = STALE_AFTER_S) -> list[Path]:
    """rmdir our cgroups under the layout's parents that are empty and older than ``older_than_s``
    (by mtime): a worker SIGKILLed mid-run leaves its run's behind. The paths removed."""
    removed: list[Path] = []
    cutoff = time.time() - older_than_s
    for parent in dict.fromkeys(path for path in (layout.pids, layout.memory) if path is not None):
        try:
            entries = list(os.scandir(parent))
        except OSError:
            continue
        for entry in entries:
            if not _OUR_NAME.fullmatch(entry.name):
                continue
            path = Path(entry.path)
            try:
                if not entry.is_dir(follow_symlinks=False) or entry.stat().st_mtime > cutoff:
                    continue
                if (path / "cgroup.procs").read_text().split():
                    continue
                path.rmdir()  # the kernel refuses (EBUSY) if a task or a child cgroup is there
            except OSError as exc:
                logger.debug("stale cgroup %s left in place: %s", path, exc)
                continue
            removed.append(path)
    if removed:
        logger.info("sandbox: removed stale cgroups %s", ", ".join(map(str, removed)))
    return removed


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


class Cgroup:
    """One run's cgroup directories: v1 one per controller, v2 one for both."""

    def __init__(self, version: int, dirs: dict[str, Path], made: list[Path]) -> None:
        self.version = version
        self.dirs = dirs
        self.made = made

    @classmethod
    def create(cls, layout: CgroupLayout, limits: Limits, name: str) -> Cgroup | None:
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
            with contextlib.suppress(OSError):
                _write(path / "memory.memsw.limit_in_bytes", str(limit))  # no escape to swap
        else:
            _write(path / "memory.max", str(limit))
            with contextlib.suppress(OSError):
                _write(path / "memory.swap.max", "0")

    def procs_files(self) -> list[str]:
        return [str(path / "cgroup.procs") for path in dict.fromkeys(self.dirs.values())]

    def pids(self) -> set[int]:
        found: set[int] = set()
        for procs in self.procs_files():
            with contextlib.suppress(OSError, ValueError):
                found.update(int(pid) for pid in Path(procs).read_text().split())
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
            signal_pid(pid, None)

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
