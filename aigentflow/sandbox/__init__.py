"""The one executor every command an agent runs goes through: tests, builds, linters, formatters.

A run is confined in layers, each used when this machine allows it and reported in
``ExecResult.isolation``:
- bubblewrap (``bwrap``): a filesystem where only the worktree, a private HOME and TMPDIR are
  writable, everything else read-only, and the user's home, /tmp, sibling projects, the repository's
  other worktrees and its ``.aigentflow/`` store not visible; the worktree's ``.git`` read-only; no
  network and a PID namespace (``isolation["filesystem"] == "bwrap"``). Where bwrap does not work
  the command is refused unless the caller allows running unconfined
  (``build.sandbox_allow_unconfined``), and the namespace layer below is all it gets;
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

- ``records.py``: ``Limits``, ``ExecResult``, ``SandboxRefused``, ``command_line``.
- ``env.py``: the environment allowlist and the scrubbing of secret-looking names and values.
- ``launcher.py``: the code run as the first process of every run, and its command line.
- ``probe.py``: what this machine offers (bwrap, namespaces, a joinable cgroup), found once per process.
- ``filesystem.py``: the bwrap command line: what a command sees, hides and may write.
- ``cgroups.py``: one run's cgroup (limits, members, kill, removal) and stale ones' cleanup.
- ``tree.py``: finding and killing a run's processes without a pid-reuse accident.
- ``output.py``: stdout and stderr under one cap, keeping head and tail.
- ``executor.py``: ``Sandbox``: prepares, starts and supervises a run.
- ``commands.py``: ``recording()``: the trace records of the commands a piece of work ran.

Stdlib only (and ``aigentflow.redact``): nothing here imports Ray or a model library.
"""

from aigentflow.sandbox.env import (
    DEFAULT_ENV_ALLOWLIST,
    NEVER_INHERITED,
    looks_like_credential,
    scrub_environment,
)
from aigentflow.sandbox.executor import (
    ALLOW_UNCONFINED_KEY,
    DISABLE_CHOICES,
    RUN_MARKER,
    Sandbox,
    check_confinement,
)
from aigentflow.sandbox.launcher import LAUNCHER_CODE
from aigentflow.sandbox.records import (
    ExecResult,
    GiB,
    KilledReason,
    Limits,
    MiB,
    SandboxRefused,
    command_line,
)

__all__ = [
    "ALLOW_UNCONFINED_KEY",
    "DEFAULT_ENV_ALLOWLIST",
    "DISABLE_CHOICES",
    "LAUNCHER_CODE",
    "NEVER_INHERITED",
    "RUN_MARKER",
    "ExecResult",
    "GiB",
    "KilledReason",
    "Limits",
    "MiB",
    "Sandbox",
    "SandboxRefused",
    "check_confinement",
    "command_line",
    "looks_like_credential",
    "scrub_environment",
]
