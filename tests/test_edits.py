"""The edit guard on real files in a real git worktree: writes land inside, escapes are refused."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from pydantic import ValidationError

from aigentflow.checks.edits import EditRefused, FileEdit, apply_edits, check_edit_path
from aigentflow.exceptions import UsageError

GIT = ["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid", "-c", "core.hooksPath=/dev/null"]


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    subprocess.run([*GIT, "init", "-q"], cwd=root, check=True)
    (root / "README.md").write_text("hello\n")
    subprocess.run([*GIT, "add", "."], cwd=root, check=True)
    subprocess.run([*GIT, "commit", "-q", "-m", "init"], cwd=root, check=True)
    return root


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    target = tmp_path / "outside"
    target.mkdir()
    return target


def git_status(root: Path) -> str:
    return subprocess.run([*GIT, "status", "--porcelain"], cwd=root, check=True,
                          capture_output=True, text=True).stdout  # fmt: skip


def test_create_update_and_delete_inside_the_worktree(repo: Path) -> None:
    (repo / "run.sh").write_text("echo old\n")
    (repo / "run.sh").chmod(0o755)
    changed = apply_edits(repo, [
        FileEdit(path="src/pkg/new.py", content="print('new')\n"),
        FileEdit(path="./README.md", content="updated\n"),
        FileEdit(path="run.sh", content="echo new\n"),
    ])  # fmt: skip
    assert changed == ["src/pkg/new.py", "README.md", "run.sh"]
    assert (repo / "src/pkg/new.py").read_text() == "print('new')\n"
    assert (repo / "README.md").read_text() == "updated\n"
    assert (repo / "run.sh").stat().st_mode & 0o777 == 0o755, "the file's mode is kept"
    assert apply_edits(repo, [FileEdit(path="README.md", delete=True)]) == ["README.md"]
    assert not (repo / "README.md").exists()
    assert sorted(git_status(repo).splitlines()) == [" D README.md", "?? run.sh", "?? src/"]
    assert not [name for name in os.listdir(repo) if name.endswith(".tmp")], "no temp file left"


def test_edits_in_a_linked_worktree_where_dot_git_is_a_file(repo: Path, tmp_path: Path) -> None:
    worktree = tmp_path / "linked"
    subprocess.run([*GIT, "worktree", "add", "-q", str(worktree)], cwd=repo, check=True)
    assert apply_edits(worktree, [FileEdit(path="a.txt", content="x")]) == ["a.txt"]
    with pytest.raises(EditRefused, match=r"\.git"):
        apply_edits(worktree, [FileEdit(path=".git", content="gitdir: /tmp/evil\n")])
    assert (worktree / ".git").read_text().startswith("gitdir:")


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("", "empty"),
        ("/etc/passwd", "absolute"),
        ("C:\\Windows\\x", "absolute"),
        ("c:/x", "absolute"),
        ("../outside", r"'\.\.'"),
        ("a/../../x", r"'\.\.'"),
        ("src/..", r"'\.\.'"),
        ("a\0b", "NUL"),
        ("..\\x", "backslash"),
        (".git/hooks/pre-commit", r"'\.git'"),
        (".GIT/config", r"'\.GIT'"),
        ("sub/.git/config", r"'\.git'"),
        (".gitmodules", "gitmodules"),
        (".aigentflow/config.toml", "aigentflow"),
        (".git./config", r"\.git"),
        (".", "worktree itself"),
        ("src/", "ends with '/'"),
    ],
)
def test_refused_paths_name_the_path_and_the_reason(repo: Path, path: str, reason: str) -> None:
    with pytest.raises(EditRefused, match=reason) as refused:
        check_edit_path(repo, path)
    assert refused.value.path == path and repr(path) in str(refused.value)
    assert isinstance(refused.value, UsageError)


def test_a_symlinked_directory_pointing_outside_is_refused(repo: Path, outside: Path) -> None:
    (repo / "link").symlink_to(outside)
    with pytest.raises(EditRefused, match=r"symlink .* outside the worktree"):
        apply_edits(repo, [FileEdit(path="link/file", content="escape")])
    with pytest.raises(EditRefused, match="outside the worktree"):
        apply_edits(repo, [FileEdit(path="link/deeper/file", content="escape")])
    assert list(outside.iterdir()) == []


def test_a_symlink_as_final_component_is_refused_not_followed(repo: Path, outside: Path) -> None:
    secret = outside / "secret.txt"
    secret.write_text("keep")
    (repo / "notes.txt").symlink_to(secret)
    (repo / "inner.txt").symlink_to(repo / "README.md")
    with pytest.raises(EditRefused, match="outside the worktree"):
        apply_edits(repo, [FileEdit(path="notes.txt", content="overwritten")])
    with pytest.raises(EditRefused, match="is a symlink"):
        apply_edits(repo, [FileEdit(path="inner.txt", content="overwritten")])
    assert secret.read_text() == "keep"
    assert (repo / "README.md").read_text() == "hello\n"


def test_a_symlink_inside_pointing_inside_is_followed(repo: Path) -> None:
    (repo / "real").mkdir()
    (repo / "alias").symlink_to("real")
    assert apply_edits(repo, [FileEdit(path="alias/f.txt", content="ok")]) == ["real/f.txt"]
    assert (repo / "real/f.txt").read_text() == "ok"


def test_a_symlink_into_dot_git_is_refused(repo: Path) -> None:
    (repo / "hooks").symlink_to(".git/hooks")
    with pytest.raises(EditRefused, match=r"\.git"):
        apply_edits(repo, [FileEdit(path="hooks/pre-commit", content="#!/bin/sh\nrm -rf ~\n")])
    assert not (repo / ".git/hooks/pre-commit").exists()


def test_one_refused_edit_means_nothing_of_the_batch_is_written(repo: Path) -> None:
    batch = [
        FileEdit(path="ok/first.txt", content="1"),
        FileEdit(path="README.md", content="changed"),
        FileEdit(path=".git/config", content="[core]\n"),
    ]
    before = (repo / ".git/config").read_text()
    with pytest.raises(EditRefused, match=r"\.git/config"):
        apply_edits(repo, batch)
    assert not (repo / "ok").exists()
    assert (repo / "README.md").read_text() == "hello\n"
    assert (repo / ".git/config").read_text() == before


def test_oversized_content_directories_and_missing_files_are_refused(repo: Path) -> None:
    (repo / "dir").mkdir()
    with pytest.raises(EditRefused, match="over the limit of 10"):
        apply_edits(repo, [FileEdit(path="big.txt", content="x" * 11)], max_bytes=10)
    with pytest.raises(EditRefused, match="directory"):
        apply_edits(repo, [FileEdit(path="dir", delete=True)])
    with pytest.raises(EditRefused, match="directory"):
        apply_edits(repo, [FileEdit(path="dir", content="x")])
    with pytest.raises(EditRefused, match="no such file"):
        apply_edits(repo, [FileEdit(path="missing.txt", delete=True)])
    with pytest.raises(EditRefused, match="not a directory"):
        apply_edits(repo, [FileEdit(path="README.md/child", content="x")])
    with pytest.raises(EditRefused, match="twice"):
        apply_edits(repo, [FileEdit(path="a", content="1"), FileEdit(path="./a", content="2")])
    assert not (repo / "big.txt").exists() and not (repo / "a").exists()


def test_file_edit_needs_content_or_delete() -> None:
    with pytest.raises(ValidationError, match="no content"):
        FileEdit(path="a.txt")
    with pytest.raises(ValidationError, match="choose one"):
        FileEdit(path="a.txt", content="x", delete=True)
    assert FileEdit(path="a.txt", content="").content == ""
