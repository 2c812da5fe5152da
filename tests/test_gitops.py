"""The git layer against real repositories in temp dirs: hostile repos, races, conflicts, crashes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from aigentflow.exceptions import UsageError
from aigentflow.gitops import names
from aigentflow.gitops.bundle import clone_bundle, create_bundle, fetch_bundle
from aigentflow.gitops.merge import MergeConflict, merge_into, predict, recover
from aigentflow.gitops.runner import Git, GitError, git_usage
from aigentflow.gitops.worktrees import (
    Worktrees,
    commit_all,
    list_worktrees,
    trailers_of,
)

RUN = "261125-120000-abcd"


def sh(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True,
                          env={**os.environ, "GIT_AUTHOR_NAME": "u", "GIT_AUTHOR_EMAIL": "u@x",
                               "GIT_COMMITTER_NAME": "u", "GIT_COMMITTER_EMAIL": "u@x"}).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    sh(root, "init", "-q", "-b", "main")
    (root / "app.py").write_text("def greet():\n    return 'hello'\n\n\ndef add(a, b):\n    return a + b\n")
    (root / ".gitignore").write_text(".aigentflow/\n")
    sh(root, "add", ".")
    sh(root, "commit", "-qm", "initial")
    return root


def plant_hooks(root: Path, marker: Path) -> None:
    """Hooks that would leave a marker, both in .git/hooks and in a core.hooksPath the repo sets."""
    for hooks_dir in (root / ".git" / "hooks", root / "evil-hooks"):
        hooks_dir.mkdir(exist_ok=True)
        for hook in ("pre-commit", "commit-msg", "post-commit", "post-checkout", "post-merge",
                     "reference-transaction", "pre-auto-gc", "post-rewrite"):
            script = hooks_dir / hook
            script.write_text(f"#!/bin/sh\necho {hook} >> {marker}\n")
            script.chmod(0o755)
    sh(root, "config", "core.hooksPath", str(root / "evil-hooks"))


def test_planted_hooks_never_run(repo: Path, tmp_path: Path) -> None:
    marker = tmp_path / "hook-ran"
    plant_hooks(repo, marker)
    trees = Worktrees(repo)
    feature = trees.ensure_feature(RUN, "main")
    wt = trees.ensure_task(RUN, "T1")
    (wt.path / "new.py").write_text("x = 1\n")
    commit = commit_all(wt.path, "T1: add new.py", {"Aigentflow-Run": RUN, "Aigentflow-Task": "T1"})
    assert commit
    merge_into(Git(repo), feature, wt.branch, message="merge T1")
    merge_into(Git(repo), "main", feature, message="merge feature")  # main is checked out: its worktree moves
    trees.remove(wt.path, branch=wt.branch)
    assert not marker.exists(), marker.read_text()
    assert (repo / "new.py").read_text() == "x = 1\n"


@pytest.mark.parametrize("bad", ["--upload-pack=touch /tmp/pwned", "-b", "a..b", "refs/heads/x", "x@{1}", "a b",
                                 "a/.hidden", "x.lock", "", "HEAD", "x;rm -rf /", "\x01"])
def test_branch_name_injection_is_refused(bad: str) -> None:
    with pytest.raises(names.UnsafeName) as info:
        names.check_branch(bad)
    assert "refused" in str(info.value)


def test_names_come_from_ids_and_are_sanitised() -> None:
    assert names.feature_branch(RUN) == f"aigentflow/{RUN}/feature"
    assert names.task_branch(RUN, "T3") == f"aigentflow/{RUN}/task/T3"
    assert names.task_branch(RUN, "--upload-pack=x") == f"aigentflow/{RUN}/task/upload-pack-x"
    with pytest.raises(names.UnsafeName):
        names.component("../..")


def test_injected_branch_never_reaches_git(repo: Path, tmp_path: Path) -> None:
    trees = Worktrees(repo)
    with pytest.raises(names.UnsafeName):
        trees.ensure(tmp_path / "wt", "--upload-pack=touch pwned", "main")
    with pytest.raises(names.UnsafeName):
        trees.ensure_feature(RUN, "--orphan")
    assert not (tmp_path / "wt").exists() and not (repo / "pwned").exists()


def test_task_worktree_needs_the_feature_branch(repo: Path) -> None:
    with pytest.raises(UsageError, match="no feature branch"):
        Worktrees(repo).ensure_task(RUN, "T1")
    assert len(list_worktrees(Git(repo))) == 1


def test_worktrees_are_made_from_the_feature_head_and_reattached(repo: Path) -> None:
    trees = Worktrees(repo)
    feature = trees.ensure_feature(RUN, "main")
    # the feature moves on before the task starts: the task starts from the feature, not from main
    side = trees.ensure(trees.path_for(RUN, "side"), "aigentflow/side", feature)
    (side.path / "feature.txt").write_text("on the feature\n")
    commit_all(side.path, "feature work", {})
    merge_into(Git(repo), feature, side.branch, message="m", style="ff")
    task = trees.ensure_task(RUN, "T1")
    assert (task.path / "feature.txt").exists() and not task.reattached
    assert task.path.is_relative_to(repo / ".aigentflow" / "worktrees")
    again = trees.ensure_task(RUN, "T1")
    assert again.reattached and again.path == task.path
    assert sh(repo, "status", "--porcelain") == ""  # worktrees are ignored by git


def test_half_made_worktree_dir_is_made_again(repo: Path) -> None:
    trees = Worktrees(repo)
    trees.ensure_feature(RUN, "main")
    stale = trees.path_for(RUN, "task-T1")
    stale.mkdir(parents=True)
    (stale / "junk").write_text("left by a killed process")
    wt = trees.ensure_task(RUN, "T1")
    assert not (wt.path / "junk").exists() and (wt.path / "app.py").exists()


PARALLEL = textwrap.dedent("""
    import sys
    from pathlib import Path
    from aigentflow.gitops.worktrees import Worktrees, commit_all
    trees = Worktrees(Path(sys.argv[1]))
    wt = trees.ensure_task(sys.argv[2], sys.argv[3])
    (wt.path / f"{sys.argv[3]}.txt").write_text(sys.argv[3])
    print(commit_all(wt.path, "work " + sys.argv[3], {"Aigentflow-Task": sys.argv[3]}))
""")


def test_eight_processes_create_worktrees_at_once_without_failures(repo: Path) -> None:
    trees = Worktrees(repo)
    trees.ensure_feature(RUN, "main")
    for _round in range(2):
        tag = f"r{_round}"
        procs = [subprocess.Popen([sys.executable, "-c", PARALLEL, str(repo), RUN, f"T{tag}{i}"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(8)]
        results = [(p.wait(timeout=120), p.stdout.read(), p.stderr.read()) for p in procs]
        assert [r[0] for r in results] == [0] * 8, [r[2] for r in results if r[0]]
    assert len(trees.for_run(RUN)) == 16
    assert len(trees.run_branches(RUN)) == 17  # 16 tasks + the feature


def conflicting_branches(repo: Path) -> tuple[Worktrees, str, str, str]:
    trees = Worktrees(repo)
    feature = trees.ensure_feature(RUN, "main")
    one, two = trees.ensure_task(RUN, "T1"), trees.ensure_task(RUN, "T2")
    (one.path / "app.py").write_text((one.path / "app.py").read_text().replace("'hello'", "'hello, world'"))
    (two.path / "app.py").write_text((two.path / "app.py").read_text().replace("'hello'", "'hi there'"))
    commit_all(one.path, "T1", {"Aigentflow-Task": "T1"})
    commit_all(two.path, "T2", {"Aigentflow-Task": "T2"})
    return trees, feature, one.branch, two.branch


def test_conflict_is_predicted_with_hunks_and_nothing_moves(repo: Path) -> None:
    _, feature, one, two = conflicting_branches(repo)
    git = Git(repo)
    assert predict(git, feature, one).clean
    merge_into(git, feature, one, message="merge T1")
    before = git.rev(feature)
    prediction = predict(git, feature, two)
    assert not prediction.clean and prediction.conflicted_paths == ["app.py"]
    hunk = prediction.hunks[0]
    assert "hello, world" in hunk.ours and "hi there" in hunk.theirs and hunk.line >= 1
    assert any("CONFLICT" in m for m in prediction.messages)
    with pytest.raises(MergeConflict) as info:
        merge_into(git, feature, two, message="merge T2")
    assert info.value.prediction.conflicted_paths == ["app.py"]
    assert git.rev(feature) == before
    assert sh(repo, "status", "--porcelain") == ""
    json.dumps(prediction.evidence())


def test_merge_styles_and_trailers(repo: Path) -> None:
    _, feature, one, _ = conflicting_branches(repo)
    git = Git(repo)
    ff = merge_into(git, feature, one, message="T1", style="ff")
    assert ff.kind == "fast-forward" and git.rev(feature) == git.rev(one)
    assert merge_into(git, feature, one, message="again").kind == "up-to-date"
    (repo / "other.txt").write_text("user work on main\n")
    sh(repo, "add", "other.txt")
    sh(repo, "commit", "-qm", "user commit")
    with pytest.raises(UsageError, match="ff-only"):
        merge_into(git, "main", feature, message="m", style="ff-only")
    done = merge_into(git, "main", feature, message="Merge feature", style="merge",
                      trailers={"Aigentflow-Run": RUN})
    assert done.kind == "merge"
    parents = sh(repo, "log", "-1", "--format=%P", "main").split()
    assert len(parents) == 2
    assert trailers_of(git, "main") == {"Aigentflow-Run": RUN}
    assert trailers_of(git, one) == {"Aigentflow-Task": "T1"}
    # the checked-out main followed: its files are the merged ones and nothing is left modified
    assert "hello, world" in (repo / "app.py").read_text() and (repo / "other.txt").exists()
    assert sh(repo, "status", "--porcelain") == ""


def test_merge_refuses_a_dirty_checked_out_target(repo: Path) -> None:
    _, feature, one, _ = conflicting_branches(repo)
    merge_into(Git(repo), feature, one, message="T1")
    (repo / "app.py").write_text("local edits\n")
    with pytest.raises(UsageError, match="uncommitted changes"):
        merge_into(Git(repo), "main", feature, message="m")
    assert (repo / "app.py").read_text() == "local edits\n"


KILLED_MERGE = textwrap.dedent("""
    import sys
    from pathlib import Path
    from aigentflow import faults
    from aigentflow.gitops.merge import merge_into
    from aigentflow.gitops.runner import Git
    faults.install(faults.from_environment())
    merge_into(Git(Path(sys.argv[1])), "main", sys.argv[2], message="merge feature")
""")


@pytest.mark.parametrize("point", ["before-sync", "after-sync"])
def test_kill_9_during_a_merge_then_recover_leaves_a_consistent_repo(repo: Path, point: str) -> None:
    _, feature, one, _ = conflicting_branches(repo)
    git = Git(repo)
    merge_into(git, feature, one, message="T1")
    old = git.rev("main")
    proc = subprocess.run([sys.executable, "-c", KILLED_MERGE, str(repo), feature], capture_output=True, check=False,
                          env={**os.environ, "AIGENTFLOW_FAULTS": f"kill-self@merge.{point}"})
    assert proc.returncode == -9
    assert (git.common_dir() / "aigentflow-merge.json").exists()
    journal = recover(git)
    assert journal and journal["old"] == old
    new = git.rev("main")
    assert new != old and git.rev(f"{new}^2") == git.rev(feature)
    assert sh(repo, "status", "--porcelain") == ""
    assert "hello, world" in (repo / "app.py").read_text()
    # running the merge again (what a resumed run does) finds it done
    assert merge_into(git, "main", feature, message="merge feature").kind == "up-to-date"


def test_bundles_carry_a_branch_to_a_clone_and_its_commits_back(repo: Path, tmp_path: Path) -> None:
    trees = Worktrees(repo)
    trees.ensure_feature(RUN, "main")
    wt = trees.ensure_task(RUN, "T1")
    git = Git(repo)
    data = create_bundle(git, wt.branch)
    clone = clone_bundle(data, tmp_path / "elsewhere", wt.branch)
    (tmp_path / "elsewhere" / "remote.txt").write_text("made on another node\n")
    made = commit_all(tmp_path / "elsewhere", "T1 remote", {"Aigentflow-Task": "T1"})
    back = create_bundle(clone, wt.branch, since=wt.head)
    assert len(back) < len(data) + 2000
    fetched = fetch_bundle(git, back, wt.branch, f"refs/aigentflow/incoming/{RUN}/T1")
    assert fetched == made
    Git(wt.path).run("merge", "--ff-only", "--quiet", fetched)
    assert (wt.path / "remote.txt").read_text() == "made on another node\n"


def test_a_binary_conflict_is_predicted_without_text_hunks(repo: Path) -> None:
    trees = Worktrees(repo)
    feature = trees.ensure_feature(RUN, "main")
    one, two = trees.ensure_task(RUN, "T1"), trees.ensure_task(RUN, "T2")
    (one.path / "blob.bin").write_bytes(b"\xa7\x00\x01one")
    (two.path / "blob.bin").write_bytes(b"\xa7\x00\x02two")
    commit_all(one.path, "T1", {}, paths=["blob.bin"])
    commit_all(two.path, "T2", {}, paths=["blob.bin"])
    merge_into(Git(repo), feature, one.branch, message="T1")
    prediction = predict(Git(repo), feature, two.branch)
    assert not prediction.clean and prediction.conflicted_paths == ["blob.bin"]
    assert [(h.path, h.ours, h.theirs) for h in prediction.hunks] == [("blob.bin", "", "")]


def test_only_the_given_paths_are_committed(repo: Path) -> None:
    trees = Worktrees(repo)
    trees.ensure_feature(RUN, "main")
    wt = trees.ensure_task(RUN, "T1")
    (wt.path / "work.py").write_text("x = 1\n")
    (wt.path / "left-by-tests.txt").write_text("junk\n")
    commit = commit_all(wt.path, "T1", {}, paths=["work.py"])
    assert sh(repo, "show", "--name-only", "--format=", commit) == "work.py"
    assert commit_all(wt.path, "nothing", {}, paths=[]) is None


def test_branch_reads_from_ref_files_agree_with_git(repo: Path, tmp_path: Path) -> None:
    """``Git.rev`` reads branches and HEAD from the ref files (no git process): what git itself says,
    for loose and packed branches, a loose one newer than its packed copy, a missing branch, a name that
    is only a directory of others, a symbolic ref, and in a linked worktree."""
    git = Git(repo)

    def truth(ref: str) -> str | None:
        proc = subprocess.run(["git", "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}"], cwd=repo,
                              capture_output=True, text=True, check=False)
        return proc.stdout.strip() or None

    sh(repo, "branch", "aigentflow/run/feature")
    sh(repo, "branch", "packed-one")
    sh(repo, "pack-refs", "--all")
    sh(repo, "branch", "loose-one")
    (repo / "app.py").write_text("changed\n")
    sh(repo, "commit", "-qam", "second")
    sh(repo, "branch", "-f", "packed-one", "HEAD")  # now loose, newer than its packed line
    sh(repo, "symbolic-ref", "refs/heads/alias", "refs/heads/loose-one")
    refs = ["refs/heads/main", "refs/heads/aigentflow/run/feature", "refs/heads/packed-one", "refs/heads/loose-one",
            "refs/heads/missing", "refs/heads/aigentflow", "refs/heads/aigentflow/run", "refs/heads/alias"]
    assert truth("refs/heads/packed-one") != truth("refs/heads/aigentflow/run/feature")
    git_before = git_usage()["commands"]
    answers = {ref: git.rev(ref) for ref in refs if ref != "refs/heads/alias"}
    assert git_usage()["commands"] - git_before <= 1  # the common directory, at most: no git per branch
    assert answers == {ref: truth(ref) for ref in answers}
    assert answers["refs/heads/missing"] is None and answers["refs/heads/aigentflow"] is None
    assert git.rev("refs/heads/alias") == truth("refs/heads/alias") == truth("refs/heads/loose-one")
    worktree = tmp_path / "linked"
    sh(repo, "worktree", "add", "-q", str(worktree), "-b", "in-worktree")
    assert Git(worktree).rev("refs/heads/in-worktree") == truth("refs/heads/in-worktree") is not None
    assert Git(worktree).rev("refs/heads/main") == truth("refs/heads/main")
    assert Git(worktree).common_dir() == (repo / ".git").resolve()
    assert git.rev("HEAD") == truth("HEAD") == truth("refs/heads/main")
    assert Git(worktree).rev("HEAD") == truth("refs/heads/in-worktree")
    sh(worktree, "checkout", "-q", "--detach", "HEAD~1")
    assert Git(worktree).rev("HEAD") == truth("refs/heads/main~1") != truth("refs/heads/in-worktree")


def test_commit_all_commits_what_changed_and_nothing_else(repo: Path) -> None:
    """Nothing changed (or only files outside ``paths``): no commit, None; a change: a commit whose id is
    what git says HEAD is; a commit git refuses is an error, not "nothing to commit"."""
    head = sh(repo, "rev-parse", "HEAD")
    assert commit_all(repo, "nothing", {}) is None and sh(repo, "rev-parse", "HEAD") == head
    (repo / "stray.txt").write_text("left by a test run\n")
    (repo / "app.py").write_text("changed\n")
    assert commit_all(repo, "only stray", {}, paths=[".gitignore"]) is None  # unchanged; the others not named
    made = commit_all(repo, "app only", {"Aigentflow-Task": "T1"}, paths=["app.py"])
    assert made == sh(repo, "rev-parse", "HEAD") != head
    assert sh(repo, "show", "--name-only", "--format=", "HEAD").split() == ["app.py"]
    assert trailers_of(Git(repo), made) == {"Aigentflow-Task": "T1"}
    assert commit_all(repo, "again", {}, paths=["app.py"]) is None
    with pytest.raises(GitError):
        commit_all(repo, "", {}, paths=["stray.txt"])  # an empty message: git refuses the commit
