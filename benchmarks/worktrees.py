"""Worktree create + remove through aigentflow's Git layer vs. raw ``git worktree add/remove``.

For N = 1, 8 and 32 worktrees on one repository (200 files), times making N worktrees (each on a new
branch from the same base) and removing them again (worktree and branch), first with raw git
commands, then with ``aigentflow.gitops.worktrees.Worktrees`` (hardened git: hooks off, checked
names, the cross-process repository lock, idempotence checks). Each N is measured ``--repeat``
times on a fresh repository (raw and aigentflow taking turns going first); medians are reported.
Target: overhead ratio at most 1.2.

Prints one JSON line: {"benchmark": "worktrees", "results": [{"n": 1, "raw_s": ..., "aigentflow_s":
..., "ratio": ...}, ...], "max_ratio": ...}.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

GIT_ENV = {**os.environ, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@x", "GIT_COMMITTER_NAME": "b",
           "GIT_COMMITTER_EMAIL": "b@x"}


def make_repo(root: Path, files: int = 200) -> Path:
    root.mkdir()
    for i in range(files):
        sub = root / f"pkg{i % 10}"
        sub.mkdir(exist_ok=True)
        (sub / f"module_{i}.py").write_text(f"def f_{i}():\n    return {i}\n" * 20)
    for args in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-qm", "base"]):
        subprocess.run(["git", *args], cwd=root, check=True, env=GIT_ENV, capture_output=True)
    return root


def raw(repo: Path, n: int) -> float:
    started = time.perf_counter()
    for i in range(n):
        subprocess.run(["git", "worktree", "add", "-q", "-b", f"raw/{i}", str(repo / ".wt" / f"raw-{i}"), "main"],
                       cwd=repo, check=True, capture_output=True)
    for i in range(n):
        subprocess.run(["git", "worktree", "remove", "--force", str(repo / ".wt" / f"raw-{i}")], cwd=repo, check=True,
                       capture_output=True)
        subprocess.run(["git", "branch", "-D", f"raw/{i}"], cwd=repo, check=True, capture_output=True)
    return time.perf_counter() - started


def ours(repo: Path, n: int) -> float:
    from aigentflow.gitops.worktrees import Worktrees

    trees = Worktrees(repo, repo / ".wt")
    started = time.perf_counter()
    made = [trees.ensure(repo / ".wt" / f"af-{i}", f"af/{i}", "main") for i in range(n)]
    for wt in made:
        trees.remove(wt.path, branch=wt.branch)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,8,32")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="af-bench-wt-") as tmp:
        for n in (int(s) for s in args.sizes.split(",")):
            raw_times, our_times = [], []
            for r in range(args.repeat):  # alternate which goes first: the disk's state favours neither
                raw_repo, our_repo = make_repo(Path(tmp) / f"raw-{n}-{r}"), make_repo(Path(tmp) / f"ours-{n}-{r}")
                if r % 2:
                    our_times.append(ours(our_repo, n))
                    raw_times.append(raw(raw_repo, n))
                else:
                    raw_times.append(raw(raw_repo, n))
                    our_times.append(ours(our_repo, n))
            raw_s, our_s = statistics.median(raw_times), statistics.median(our_times)
            results.append({"n": n, "raw_s": round(raw_s, 4), "aigentflow_s": round(our_s, 4),
                            "ratio": round(our_s / raw_s, 3)})
    print(json.dumps({"benchmark": "worktrees", "repeat": args.repeat, "results": results,
                      "max_ratio": max(r["ratio"] for r in results), "target_max_ratio": 1.2}))


if __name__ == "__main__":
    main()
