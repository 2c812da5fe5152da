"""`aigentflow release` against real repositories: versions from conventional commits, the
changelog from the runs' history, the tag, the store, and a user's working tree left clean."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from aigentflow.gitops.merge import move_branch
from aigentflow.gitops.runner import Git
from aigentflow.release import RELEASE_SUBJECT, Version, commit_changelog, plan_release
from aigentflow.store.sqlite import SQLiteRunStore
from tests.conftest import aigentflow


def sh(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "core.hooksPath=/dev/null", *args], cwd=cwd, check=True,
                          capture_output=True, text=True,
                          env={**os.environ, "GIT_AUTHOR_NAME": "u", "GIT_AUTHOR_EMAIL": "u@x",
                               "GIT_COMMITTER_NAME": "u", "GIT_COMMITTER_EMAIL": "u@x"}).stdout.strip()


def commit(repo: Path, message: str, *, trailers: dict[str, str] | None = None) -> str:
    """A commit on the checked-out branch changing one file; ``message`` may hold a body."""
    with (repo / "history.txt").open("a") as handle:
        handle.write(message.splitlines()[0] + "\n")
    sh(repo, "add", "history.txt")
    args = ["commit", "-q", "-m", message]
    for key, value in (trailers or {}).items():
        args += ["--trailer", f"{key}: {value}"]
    sh(repo, *args)
    return sh(repo, "rev-parse", "HEAD")


def snapshot(repo: Path) -> tuple[str, str, str]:
    """Refs, tracked status, and the checked-out CHANGELOG.md: what a refused release must not change."""
    changelog = repo / "CHANGELOG.md"
    return (sh(repo, "for-each-ref", "--format=%(refname) %(objectname)"),
            sh(repo, "status", "--porcelain", "--untracked-files=no"),
            changelog.read_text() if changelog.exists() else "")


def releases(repo: Path) -> list:
    store = SQLiteRunStore(repo / ".aigentflow" / "state.db")
    try:
        return store.releases()
    finally:
        store.close()


def test_semver_parsing_and_precedence() -> None:
    ordered = ["1.0.0-alpha", "1.0.0-alpha.1", "1.0.0-alpha.beta", "1.0.0-beta", "1.0.0-beta.2",
               "1.0.0-beta.11", "1.0.0-rc.1", "1.0.0", "1.0.1", "1.10.0", "2.0.0"]
    versions = [Version.parse(text) for text in ordered]
    assert all(versions) and [str(v) for v in versions] == ordered
    assert sorted(versions, key=lambda v: v.precedence()) == versions
    for bad in ("1.2", "01.2.3", "1.2.3+build.1", "v1.2.3", "1.2.3-", "1.2.3-01", "", "-1.2.3"):
        assert Version.parse(bad) is None, bad


@pytest.fixture
def tagged_repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    sh(root, "init", "-q", "-b", "main")
    commit(root, "initial")
    return root


@pytest.mark.parametrize(("last", "messages", "expected"), [
    ("1.2.3", ["fix: a crash"], "1.2.4"),
    ("1.2.3", ["perf: faster"], "1.2.4"),
    ("1.2.3", ["docs: words", "feat: a thing", "fix: a crash"], "1.3.0"),
    ("1.2.3", ["feat(api)!: drop the old endpoint", "feat: a thing"], "2.0.0"),
    ("1.2.3", ["refactor: internals\n\nBREAKING CHANGE: the config file moved"], "2.0.0"),
    ("1.2.3", ["fix: x\n\nBREAKING-CHANGE: y"], "2.0.0"),
    ("0.3.2", ["feat!: breaking before 1.0 bumps the minor"], "0.4.0"),
    ("0.3.2", ["fix: a crash"], "0.3.3"),
    ("1.0.0-rc.1", ["fix: last one"], "1.0.0"),
])
def test_next_version_from_conventional_commits(tagged_repo: Path, last: str, messages: list[str],
                                               expected: str) -> None:
    sh(tagged_repo, "tag", "-a", "-m", "old", f"v{last}")
    for message in messages:
        commit(tagged_repo, message)
    plan = plan_release(Git(tagged_repo), "main", "v", None)
    assert str(plan.version) == expected and plan.tag == f"v{expected}" and plan.previous_tag == f"v{last}"
    assert len(plan.commits) == len(messages)


def plant_hooks(repo: Path, marker: Path) -> None:
    for hooks_dir in (repo / ".git" / "hooks", repo / "evil-hooks"):
        hooks_dir.mkdir(exist_ok=True)
        for hook in ("pre-commit", "commit-msg", "post-commit", "post-checkout", "reference-transaction",
                     "post-index-change", "pre-push"):
            script = hooks_dir / hook
            script.write_text(f"#!/bin/sh\necho {hook} >> {marker}\n")
            script.chmod(0o755)
    sh(repo, "add", "evil-hooks")
    sh(repo, "commit", "-qm", "chore: hooks")
    sh(repo, "config", "core.hooksPath", str(repo / "evil-hooks"))


def test_release_commits_the_changelog_tags_it_and_records_it(sample_repo: Path, tmp_path: Path) -> None:
    marker = tmp_path / "hook-ran"
    plant_hooks(sample_repo, marker)
    store = SQLiteRunStore(sample_repo / ".aigentflow" / "state.db")
    project = store.get_project()
    run = store.create_run(project_id=project["id"], request="Add a --due option to `tasks add`",
                           model="replay/demo", settings={}, flags={})
    store.close()
    known = {"Aigentflow-Run": run.id, "Aigentflow-Task": "T1", "Aigentflow-Agent": "developer"}
    commit(sample_repo, "feat(cli): add --due to tasks add", trailers=known)
    commit(sample_repo, "fix: keep the due date when editing", trailers={**known, "Aigentflow-Task": "T2"})
    commit(sample_repo, "feat: from a run this store never saw", trailers={"Aigentflow-Run": "251231-235959-beef"})
    before = sh(sample_repo, "rev-parse", "main")

    result = aigentflow("release", "--json", cwd=sample_repo)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["tag"] == "v0.2.0" and report["previous_tag"] is None  # the sample declares 0.1.0, untagged
    assert report["based_on"]["text"] == "from pyproject.toml version 0.1.0, no release tag yet"

    head = sh(sample_repo, "rev-parse", "main")
    assert head == report["commit"] and sh(sample_repo, "rev-parse", "main^") == before
    assert sh(sample_repo, "log", "-1", "--format=%s", "main") == "chore(release): v0.2.0"
    assert sh(sample_repo, "diff", "--name-only", "main^", "main") == "CHANGELOG.md"
    assert sh(sample_repo, "cat-file", "-t", "v0.2.0") == "tag"
    assert sh(sample_repo, "rev-parse", "v0.2.0^{commit}") == head
    assert "## v0.2.0" in sh(sample_repo, "tag", "-l", "--format=%(contents)", "v0.2.0")

    changelog = sh(sample_repo, "show", "main:CHANGELOG.md")
    assert changelog.startswith("# Changelog\n\n## v0.2.0 (")
    features, fixes, runs = changelog.index("### Features"), changelog.index("### Fixes"), changelog.index("### Runs")
    assert features < changelog.index("**cli:** add --due to tasks add") < fixes
    assert fixes < changelog.index("keep the due date when editing") < runs
    assert "### Other" in changelog and "Sample project" in changelog
    assert f'- `{run.id}`: "Add a --due option to `tasks add`" (tasks T1, T2)' in changelog
    assert "`251231-235959-beef`: (not in this project's run store)" in changelog

    assert sh(sample_repo, "status", "--porcelain", "--untracked-files=no") == ""
    assert (sample_repo / "CHANGELOG.md").read_text().strip() == changelog
    assert not marker.exists(), marker.read_text()
    [record] = releases(sample_repo)
    assert (record.tag, record.version, record.commit_sha) == ("v0.2.0", "0.2.0", head)
    assert record.run_ids == sorted([run.id, "251231-235959-beef"]) and "## v0.2.0" in record.changelog


def test_second_release_prepends_and_nothing_more_is_refused(sample_repo: Path) -> None:
    nothing = aigentflow("release", cwd=sample_repo)  # only "Sample project": no feature, no fix
    assert nothing.returncode == 2 and "nothing to release from pyproject.toml version 0.1.0" in nothing.stderr
    assert "--version 0.1.0 to tag the version pyproject.toml declares" in nothing.stderr
    assert aigentflow("release", "--version", "0.1.0", cwd=sample_repo).returncode == 0
    again = aigentflow("release", cwd=sample_repo)
    assert again.returncode == 2 and "nothing to release since v0.1.0" in again.stderr

    commit(sample_repo, "docs: explain the due date")
    before = snapshot(sample_repo)
    only_docs = aigentflow("release", cwd=sample_repo)
    assert only_docs.returncode == 2 and "nothing to release since v0.1.0" in only_docs.stderr
    assert "--version" in only_docs.stderr and snapshot(sample_repo) == before

    commit(sample_repo, "feat: list tasks by due date")
    second = aigentflow("release", cwd=sample_repo)
    assert second.returncode == 0, second.stderr
    assert "v0.2.0" in second.stdout and "list tasks by due date" in second.stdout
    changelog = (sample_repo / "CHANGELOG.md").read_text()
    assert changelog.count("# Changelog") == 1
    assert changelog.index("## v0.2.0") < changelog.index("explain the due date") < changelog.index("## v0.1.0")
    assert "Sample project" in changelog[changelog.index("## v0.1.0"):]
    assert [r.tag for r in releases(sample_repo)] == ["v0.2.0", "v0.1.0"]
    assert sh(sample_repo, "status", "--porcelain", "--untracked-files=no") == ""


def test_explicit_version_and_refused_versions_change_nothing(sample_repo: Path) -> None:
    assert aigentflow("release", "--version", "0.3.0", cwd=sample_repo).returncode == 0
    assert sh(sample_repo, "tag", "-l") == "v0.3.0"
    commit(sample_repo, "fix: a crash")
    before = snapshot(sample_repo)
    for bad, words in (("0.3.0", "not greater than the last release v0.3.0"), ("0.2.9", "not greater"),
                       ("banana", "not a semantic version"), ("1.2", "not a semantic version"),
                       ("1.0.0+build.7", "build metadata")):
        refused = aigentflow("release", "--version", bad, cwd=sample_repo)
        assert refused.returncode == 2 and words in refused.stderr, (bad, refused.stderr)
        assert snapshot(sample_repo) == before
    assert [r.tag for r in releases(sample_repo)] == ["v0.3.0"]
    done = aigentflow("release", "--version", "v1.0.0", "--json", cwd=sample_repo)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["tag"] == "v1.0.0"
    assert sh(sample_repo, "rev-parse", "v1.0.0^{commit}") == sh(sample_repo, "rev-parse", "main")


def test_dry_run_prints_and_changes_nothing(sample_repo: Path) -> None:
    commit(sample_repo, "feat: something")
    before = snapshot(sample_repo)
    dry = aigentflow("release", "--dry-run", cwd=sample_repo)
    assert dry.returncode == 0, dry.stderr
    assert "Would release v0.2.0 on main (from pyproject.toml version 0.1.0, no release tag yet" in dry.stdout
    assert "### Features" in dry.stdout and "- something" in dry.stdout
    as_json = json.loads(aigentflow("release", "--dry-run", "--json", cwd=sample_repo).stdout)
    assert as_json["dry_run"] is True and as_json["version"] == "0.2.0"
    assert as_json["based_on"]["source"] == "declared" and as_json["based_on"]["declared"]["file"] == "pyproject.toml"
    assert snapshot(sample_repo) == before and not (sample_repo / "CHANGELOG.md").exists()
    assert releases(sample_repo) == []


def test_uncommitted_changes_on_the_integration_branch_are_refused(sample_repo: Path) -> None:
    commit(sample_repo, "feat: something")
    (sample_repo / "README.md").write_text("edited, not committed\n")
    before = snapshot(sample_repo)
    refused = aigentflow("release", cwd=sample_repo)
    assert refused.returncode == 2 and "uncommitted changes" in refused.stderr
    assert snapshot(sample_repo) == before and releases(sample_repo) == []
    assert (sample_repo / "README.md").read_text() == "edited, not committed\n"

    sh(sample_repo, "checkout", "-q", "README.md")
    (sample_repo / "CHANGELOG.md").write_text("my own notes\n")
    untracked = aigentflow("release", cwd=sample_repo)
    assert untracked.returncode == 2 and "not committed" in untracked.stderr
    assert (sample_repo / "CHANGELOG.md").read_text() == "my own notes\n" and sh(sample_repo, "tag", "-l") == ""


def test_releasing_a_branch_that_is_not_checked_out(sample_repo: Path) -> None:
    commit(sample_repo, "feat: something")
    sh(sample_repo, "checkout", "-q", "-b", "topic")
    (sample_repo / "README.md").write_text("work in progress on another branch\n")
    done = aigentflow("release", cwd=sample_repo)
    assert done.returncode == 0, done.stderr
    assert sh(sample_repo, "log", "-1", "--format=%s", "main") == "chore(release): v0.2.0"
    assert sh(sample_repo, "rev-parse", "--abbrev-ref", "HEAD") == "topic"
    assert not (sample_repo / "CHANGELOG.md").exists()
    assert (sample_repo / "README.md").read_text() == "work in progress on another branch\n"


def test_a_release_that_stopped_before_its_tag_is_finished_not_redone(sample_repo: Path) -> None:
    commit(sample_repo, "fix: something")
    git = Git(sample_repo)
    plan = plan_release(git, "main", "v", None)
    # what a release killed between its commit and its tag leaves behind
    made = commit_changelog(git, plan.head, plan.changelog, RELEASE_SUBJECT.format(tag=plan.tag))
    with git.lock():
        move_branch(git, "main", plan.head, made)
    assert sh(sample_repo, "tag", "-l") == ""

    wrong = aigentflow("release", "--version", "2.0.0", cwd=sample_repo)
    assert wrong.returncode == 2 and "left untagged" in wrong.stderr and sh(sample_repo, "tag", "-l") == ""
    finished = aigentflow("release", cwd=sample_repo)
    assert finished.returncode == 0, finished.stderr
    assert "Finished v0.1.1" in finished.stdout
    assert sh(sample_repo, "rev-parse", "main") == made == sh(sample_repo, "rev-parse", "v0.1.1^{commit}")
    assert sh(sample_repo, "log", "--format=%s", "main").count("chore(release)") == 1
    [record] = releases(sample_repo)
    assert record.commit_sha == made and "- something" in record.changelog
    assert aigentflow("release", cwd=sample_repo).returncode == 2


def test_a_release_is_recorded_once_per_tag(sample_repo: Path) -> None:
    store = SQLiteRunStore(sample_repo / ".aigentflow" / "state.db")
    try:
        project_id = store.get_project()["id"]
        first = store.record_release(project_id=project_id, version="1.0.0", tag="v1.0.0", commit_sha="a" * 40,
                                     changelog="## v1.0.0\n", run_ids=["r2", "r1"])
        again = store.record_release(project_id=project_id, version="1.0.0", tag="v1.0.0", commit_sha="b" * 40,
                                     changelog="other", run_ids=[])
        assert again == first and first.run_ids == ["r1", "r2"] and len(store.releases()) == 1
    finally:
        store.close()
