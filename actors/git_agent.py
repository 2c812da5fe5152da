"""The Git Agent: owns every mutation of the user's repository during a run.

One actor per node (``GitAgents``, started by the run host and kept across runs), holding a
``GitAgent`` per project; a run reaches its project's through a ``ProjectGit`` handle, on the
repository's node (next to the run's Orchestrator). It makes the feature branch
and the task worktrees, commits a task's work, takes a remote task's commits back from a bundle,
predicts and performs merges, and prepares the scratch worktree a conflict is resolved in. It runs a
few calls at once (threads); ``RepoLock`` serialises the mutations, across processes too. Everything
goes through ``aigentflow.gitops`` (hooks off, no prompts, checked names, ``--`` before paths).
Each operation is recorded (what, on which branches, how long, its error) until the run's workflow
takes the records (``operations``) and traces them as ``git <operation>`` spans of its step.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from aigentflow import faults
from aigentflow.faults import FaultPlan
from aigentflow.gitops import names
from aigentflow.gitops.bundle import create_bundle, fetch_bundle
from aigentflow.gitops.merge import MergeConflict, is_ancestor, merge_into, predict
from aigentflow.gitops.runner import Git, uncounted
from aigentflow.gitops.worktrees import Worktrees, commit_all, trailers_of

SNAPSHOT_MAX_FILE = 20_000
SNAPSHOT_MAX_TOTAL = 120_000


class GitAgent:
    role = "git_agent"

    def __init__(self, project_root: str, fault_plan: FaultPlan | None = None) -> None:
        faults.install(fault_plan)  # the fault points a crash test turned on (gitops.merge has some)
        self.root = Path(project_root)
        self.git = Git(self.root)
        self.trees = Worktrees(self.root)
        self._operations: list[dict[str, Any]] = []
        self._operations_lock = threading.Lock()

    @contextmanager
    def _operation(self, name: str, sink: list[dict[str, Any]] | None = None,
                   **attributes: Any) -> Iterator[dict[str, Any]]:
        """Record one operation; the block may add attributes to what it yields; an exception is its error.
        ``sink``: where the record goes instead of the run's operations (a shadow's, returned to its caller)."""
        record: dict[str, Any] = {"operation": name, "started_ns": time.time_ns(), "error": None,
                                  "attributes": {k: v for k, v in attributes.items() if v is not None}}
        try:
            yield record["attributes"]
        except Exception as exc:
            record["error"] = f"{type(exc).__name__}: {str(exc)[:500]}"
            raise
        finally:
            record["ended_ns"] = time.time_ns()
            if sink is not None:
                sink.append(record)
            else:
                with self._operations_lock:
                    self._operations.append(record)

    def operations(self) -> list[dict[str, Any]]:
        """The operations recorded since the last call (each given once), oldest first."""
        with self._operations_lock:
            taken, self._operations = self._operations, []
        return taken

    def ping(self) -> str:
        return self.role

    def usage(self) -> dict[str, float]:
        """The git commands this agent ran so far, and their wall time."""
        from aigentflow.gitops.runner import git_usage

        return git_usage()

    def node_id(self) -> str:
        import ray

        return ray.get_runtime_context().get_node_id()

    # -- branches and worktrees -------------------------------------------------------------------

    def prepare_feature(self, run_id: str, integration: str) -> dict[str, str]:
        with self._operation("prepare_feature", source=integration) as op:
            branch = self.trees.ensure_feature(run_id, integration)
            op.update(branch=branch, commit=self.git.rev(f"refs/heads/{branch}") or "")
        return {"branch": branch, "head": op["commit"]}

    def task_worktree(self, run_id: str, task_id: str) -> dict[str, Any]:
        with self._operation("task_worktree", task=task_id) as op:
            wt = self.trees.ensure_task(run_id, task_id)
            op.update(branch=wt.branch, commit=wt.head or "", reattached=bool(wt.reattached))
        return {"path": str(wt.path), "branch": wt.branch, "head": wt.head, "reattached": wt.reattached}

    def head(self, branch: str) -> str | None:
        return self.git.rev(f"refs/heads/{names.check_branch(branch)}")

    def task_state(self, run_id: str, task_id: str) -> dict[str, Any]:
        """Where a task stands in git: its last commit by this run, and whether the feature has it."""
        branch, feature = names.task_branch(run_id, task_id), names.feature_branch(run_id)
        head = self.git.rev(f"refs/heads/{branch}")
        if head is None:
            return {"commit": None, "merged": False}
        mine = trailers_of(self.git, head)
        committed = head if mine.get("Aigentflow-Run") == run_id and mine.get("Aigentflow-Task") == task_id else None
        return {"commit": committed, "merged": bool(committed) and is_ancestor(self.git, head, f"refs/heads/{feature}")}

    def snapshot(self, worktree: str) -> dict[str, str]:
        """The worktree's tracked text files a developer should see, within a size budget."""
        wt = Git(worktree)
        files, total = {}, 0
        for rel in wt.out("ls-files", "-z").split("\0"):
            path = Path(worktree) / rel
            if not rel or path.is_symlink() or not path.is_file() or path.stat().st_size > SNAPSHOT_MAX_FILE:
                continue
            try:
                text = path.read_text()
            except (UnicodeDecodeError, OSError):
                continue
            if total + len(text) > SNAPSHOT_MAX_TOTAL:
                break
            files[rel], total = text, total + len(text)
        return files

    def commit_task(self, worktree: str, message: str, trailers: dict[str, str], paths: list[str]) -> str | None:
        """Commit the task's edits (``paths``), not whatever its test run left in the worktree."""
        with self._operation("commit", task=trailers.get("Aigentflow-Task"), agent=trailers.get("Aigentflow-Agent"),
                             paths=len(paths)) as op:
            op["commit"] = commit_all(Path(worktree), message, trailers, paths=paths) or ""
        return op["commit"] or None

    def task_bundle(self, run_id: str, task_id: str) -> bytes:
        return create_bundle(self.git, names.task_branch(run_id, task_id))

    def accept_bundle(self, run_id: str, task_id: str, data: bytes, worktree: str) -> str:
        """Bring a remote task's commits into its branch (and worktree): a fast-forward only."""
        branch = names.task_branch(run_id, task_id)
        incoming = f"refs/aigentflow/incoming/{names.component(run_id)}/{names.component(task_id)}"
        with self._operation("accept_bundle", task=task_id, branch=branch, bytes=len(data)) as op:
            commit = fetch_bundle(self.git, data, branch, incoming)
            with self.git.lock():
                Git(worktree).run("merge", "--ff-only", "--quiet", commit)
                self.git.run("update-ref", "-d", incoming)
            op["commit"] = commit
        return commit

    # -- merges -----------------------------------------------------------------------------------

    def changed_paths(self, base: str, ref: str) -> list[str]:
        """Paths ``ref`` changed since it left ``base`` (diff from their merge base)."""
        return [p for p in self.git.out("diff", "--name-only", "-z", f"{base}...{ref}", "--").split("\0") if p]

    def diff(self, base: str, ref: str, max_chars: int = 60_000, context: int = 3) -> str:
        """What ``ref`` changed since it left ``base``, as a unified diff (cut at ``max_chars``)."""
        text = self.git.out("diff", "--no-color", "--no-ext-diff", f"-U{context}", f"{base}...{ref}", "--")
        return text if len(text) <= max_chars else text[:max_chars] + f"\n[... {len(text) - max_chars} chars cut]"

    def predict(self, target: str, source: str) -> dict[str, Any]:
        with self._operation("predict_merge", target=target, source=source) as op:
            prediction = predict(self.git, target, source)
            op["conflict"] = not prediction.clean
        return {"clean": prediction.clean, **prediction.evidence()}

    def merge(self, target: str, source: str, message: str, trailers: dict[str, str],
              style: str = "merge") -> dict[str, Any]:
        """Merge, or report the conflict with its evidence (nothing changed then)."""
        with self._operation("merge", target=target, source=source, style=style) as op:
            try:
                outcome = merge_into(self.git, target, source, message=message, trailers=trailers, style=style)  # type: ignore[arg-type]
            except MergeConflict as exc:
                evidence = exc.prediction.evidence()
                op.update(conflict=True, conflicted_paths=",".join(evidence.get("conflicted_paths") or []))
                return {"conflict": evidence}
            op.update(conflict=False, kind=outcome.kind, commit=outcome.new or "")
        return {"target": outcome.target, "old": outcome.old, "new": outcome.new, "kind": outcome.kind}

    def resolution_worktree(self, run_id: str, label: str, target: str, source: str | None = None) -> dict[str, Any]:
        """A scratch worktree on a resolve branch at ``target`` with ``source`` merged in, conflicts and all
        (without ``source``: just ``target``, to run something on it)."""
        branch = names.resolve_branch(run_id, label)
        path = self.trees.path_for(run_id, f"resolve-{label}")
        with self._operation("scratch_worktree", branch=branch, target=target, source=source) as op:
            if self.git.rev(f"refs/heads/{branch}"):  # a retried resolution starts over from the target
                self.trees.remove(path, branch=branch)
            wt = self.trees.ensure(path, branch, target)
            if source is None:
                return {"path": str(wt.path), "branch": branch, "conflicted": [], "files": {}, "clean": True}
            merged = Git(wt.path).run("merge", "--no-ff", "--no-commit", "--quiet", self.git.rev(source) or source,
                                      check=False)
            conflicted = [p for p in Git(wt.path).out("diff", "--name-only", "--diff-filter=U", "-z").split("\0")
                          if p]
            op["conflict"] = bool(conflicted)
        files = {p: (wt.path / p).read_text(errors="replace") for p in conflicted if (wt.path / p).is_file()}
        return {"path": str(wt.path), "branch": branch, "conflicted": conflicted, "files": files,
                "clean": merged.returncode == 0}

    def commit_resolution(self, worktree: str, message: str, trailers: dict[str, str], paths: list[str]) -> str:
        """Commit the merge in progress in a resolution worktree (its parents: target and source), with
        the resolver's files (``paths``); nothing the test run left behind."""
        wt = Git(worktree)
        with self._operation("commit_resolution", agent=trailers.get("Aigentflow-Agent"), paths=len(paths)) as op:
            with self.git.lock():
                if paths:
                    wt.run("add", "--all", "--", *paths)
                args = ["commit", "--quiet", "--no-verify", "-m", message]
                for key, value in trailers.items():
                    args += ["--trailer", f"{key}: {value}"]
                wt.run(*args)
            op["commit"] = wt.rev("HEAD") or wt.out("rev-parse", "HEAD")
        return op["commit"]

    def remove_worktree(self, worktree: str, branch: str | None = None) -> None:
        with self._operation("remove_worktree", branch=branch):
            self.trees.remove(Path(worktree), branch=branch)

    # -- a shadow's scratch (``aigentflow.run.shadow``): no branch, not in the run's git usage or operations --

    def shadow_worktree(self, run_id: str, label: str, commit: str) -> dict[str, Any]:
        """A scratch worktree on a detached HEAD at ``commit`` for a shadow to apply its edits in; its git
        commands count neither in the run's usage nor in its operations (they come back, for the shadow's
        spans)."""
        ops: list[dict[str, Any]] = []
        path = self.trees.path_for(run_id, f"shadow-{label}")
        with uncounted(), self._operation("shadow_worktree", ops, commit=commit, shadow=True):
            self.trees.detached(path, commit)
        return {"path": str(path), "operations": ops}

    def remove_shadow_worktree(self, worktree: str) -> list[dict[str, Any]]:
        """Remove a shadow's scratch worktree (what it holds is discarded); the operation's record."""
        ops: list[dict[str, Any]] = []
        with uncounted(), self._operation("remove_shadow_worktree", ops, shadow=True):
            self.trees.remove(Path(worktree))
        return ops


class GitAgents:
    """The Git Agents of one node in one process, kept across runs: a ``GitAgent`` per project root."""

    role = "git_agent"

    def __init__(self, fault_plan: FaultPlan | None = None) -> None:
        import threading

        self._fault_plan = fault_plan
        self._agents: dict[str, GitAgent] = {}
        self._lock = threading.Lock()

    def call(self, project_root: str, method: str, *args: Any, **kwargs: Any) -> Any:
        """``GitAgent.<method>(*args, **kwargs)`` on ``project_root``'s agent."""
        with self._lock:
            agent = self._agents.get(project_root)
            if agent is None:
                agent = self._agents[project_root] = GitAgent(project_root, self._fault_plan)
        return getattr(agent, method)(*args, **kwargs)

    def ping(self) -> str:
        return self.role


class ProjectGit:
    """One project's handle on its node's ``GitAgents``, used as an actor handle of a ``GitAgent``:
    ``git.merge.remote(...)`` returns the ObjectRef of that call (it pickles, for build tasks)."""

    def __init__(self, handle: Any, project_root: str) -> None:
        self.handle = handle
        self.project_root = project_root

    def __getattr__(self, method: str) -> _GitCall:
        if method.startswith("_"):
            raise AttributeError(method)
        return _GitCall(self.handle, self.project_root, method)


class _GitCall:
    def __init__(self, handle: Any, project_root: str, method: str) -> None:
        self.handle, self.project_root, self.method = handle, project_root, method

    def remote(self, *args: Any, **kwargs: Any) -> Any:
        return self.handle.call.remote(self.project_root, self.method, *args, **kwargs)
