"""The launcher: the first process of every run, started instead of ``preexec_fn``.

``preexec_fn`` is unsafe in threaded Ray workers, so a tiny stdlib-only program joins the run's
cgroups, sets the rlimits, runs the command as its child, records the command's wait status in a
file (so that a sandbox kill is told apart from the command's own exit) and, without a PID
namespace, reaps the orphans it inherits like an init.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

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


def launcher_argv(
    cgroup_procs: Iterable[str], rlimits: Mapping[str, int], status: Path, reaper: bool
) -> list[str]:
    """The launcher's command line, to which the command's argv is appended."""
    options = [f"cgroup={procs}" for procs in cgroup_procs]
    options += [f"rlimit={name}:{value}" for name, value in rlimits.items()]
    options += [f"status={status}", *(["reaper=1"] if reaper else [])]
    return [sys.executable, "-I", "-S", "-c", LAUNCHER_CODE, *options, "--"]
