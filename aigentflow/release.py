"""Releases: the next version from conventional commits, a CHANGELOG.md section from the runs'
history, a commit and an annotated tag on the integration branch, and a record in the store.

Versions are semantic (``X.Y.Z`` or ``X.Y.Z-pre.1``, no ``+build``); tags are ``<git.tag_prefix>X.Y.Z``.
The next version, unless one is given:

- a breaking change (``feat!:``, ``fix(api)!:``, or a ``BREAKING CHANGE:`` / ``BREAKING-CHANGE:``
  footer) bumps the major version, ``feat:`` the minor, ``fix:`` and ``perf:`` the patch; other
  commits (``docs:``, ``chore:``, non-conventional subjects) are listed but release nothing;
- before 1.0.0 the API is not stable yet: a breaking change bumps the minor (0.3.2 -> 0.4.0), and
  1.0.0 is only reached by asking for it (``--version 1.0.0``);
- after a pre-release (1.0.0-rc.1) any releasable commit gives its release (1.0.0);
- the first release (no earlier tag on the branch) is 0.1.0.

The changelog commit is built in a temporary index (no working tree is touched) and the branch is
moved with ``move_branch``, so a checked-out integration branch follows and the user's working tree
ends clean. A crash between the commit and the tag is finished by running the release again: the
``chore(release): vX.Y.Z`` commit at the branch head is tagged and recorded, never made twice.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aigentflow.exceptions import UnknownRun, UsageError
from aigentflow.gitops import names
from aigentflow.gitops.merge import move_branch, recover
from aigentflow.gitops.runner import Git
from aigentflow.gitops.worktrees import checked_out_at

CHANGELOG = "CHANGELOG.md"
CHANGELOG_TITLE = "# Changelog\n"
RELEASE_SUBJECT = "chore(release): {tag}"
FIRST_VERSION = "0.1.0"
BUMPS = {"feat": "minor", "fix": "patch", "perf": "patch"}
_LEVELS = ("patch", "minor", "major")
_IDENT = r"(?:0|[1-9]\d*|\d*[A-Za-z-][0-9A-Za-z-]*)"
_SEMVER = re.compile(rf"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-({_IDENT}(?:\.{_IDENT})*))?$")
_CONVENTIONAL = re.compile(r"^(?P<kind>[A-Za-z]+)(?:\((?P<scope>[^()]*)\))?(?P<bang>!)?:\s+(?P<text>.+)$")
_BREAKING_FOOTER = re.compile(r"^BREAKING[ -]CHANGE:\s*(.*)$", re.MULTILINE)
RUN_TRAILER, TASK_TRAILER = "Aigentflow-Run", "Aigentflow-Task"


@dataclass(frozen=True)
class Version:
    major: int
    minor: int
    patch: int
    pre: tuple[str, ...] = ()

    @classmethod
    def parse(cls, text: str) -> Version | None:
        match = _SEMVER.match(text)
        if not match:
            return None
        pre = tuple(match.group(4).split(".")) if match.group(4) else ()
        return cls(int(match.group(1)), int(match.group(2)), int(match.group(3)), pre)

    def __str__(self) -> str:
        core = f"{self.major}.{self.minor}.{self.patch}"
        return f"{core}-{'.'.join(self.pre)}" if self.pre else core

    def precedence(self) -> tuple:
        """Semver precedence: a pre-release sorts before its release; numeric identifiers numerically."""
        pre = tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in self.pre)
        return (self.major, self.minor, self.patch, (0, pre) if self.pre else (1, ()))

    def bump(self, level: str) -> Version:
        if self.pre:
            return Version(self.major, self.minor, self.patch)
        if level == "major" and self.major == 0:
            level = "minor"
        if level == "major":
            return Version(self.major + 1, 0, 0)
        if level == "minor":
            return Version(self.major, self.minor + 1, 0)
        return Version(self.major, self.minor, self.patch + 1)


@dataclass(frozen=True)
class Commit:
    sha: str
    short: str
    subject: str
    body: str
    trailers: dict[str, str]
    is_merge: bool

    @property
    def conventional(self) -> re.Match[str] | None:
        return _CONVENTIONAL.match(self.subject)

    @property
    def kind(self) -> str | None:
        match = self.conventional
        return match.group("kind").lower() if match else None

    @property
    def breaking(self) -> str | None:
        """The breaking-change note ("" when only ``!`` marks it), or None."""
        footer = _BREAKING_FOOTER.search(self.body)
        if footer:
            return footer.group(1).strip()
        match = self.conventional
        return "" if match and match.group("bang") else None

    @property
    def bump(self) -> str | None:
        if self.breaking is not None:
            return "major"
        return BUMPS.get(self.kind or "")

    def line(self) -> str:
        match = self.conventional
        text = match.group("text") if match else self.subject
        scope = f"**{match.group('scope')}:** " if match and match.group("scope") else ""
        note = f": {self.breaking}" if self.breaking else ""
        return f"- {scope}{text}{note} ({self.short})"


@dataclass
class RunSummary:
    run_id: str
    request: str | None
    tasks: list[str] = field(default_factory=list)

    def line(self) -> str:
        request = " ".join((self.request or "").split())
        shown = f'"{request[:200]}"' if self.request is not None else "(not in this project's run store)"
        tasks = f" (tasks {', '.join(self.tasks)})" if self.tasks else ""
        return f"- `{self.run_id}`: {shown}{tasks}"


@dataclass
class ReleasePlan:
    branch: str
    head: str
    previous_tag: str | None
    version: Version
    tag: str
    commits: list[Commit]
    runs: list[RunSummary]
    section: str
    changelog: str
    resumed: bool = False
    """The ``chore(release)`` commit is already the branch head (an earlier release stopped there)."""

    def report(self) -> dict[str, Any]:
        return {"branch": self.branch, "version": str(self.version), "tag": self.tag,
                "previous_tag": self.previous_tag, "commits": len(self.commits), "resumed": self.resumed,
                "runs": [asdict(r) for r in self.runs], "changelog": self.section}


def read_commits(git: Git, since: str | None, head: str) -> list[Commit]:
    """The commits reachable from ``head`` and not from ``since``, newest first."""
    spec = f"{since}..{head}" if since else head
    raw = git.out("log", "-z", "--format=%H%x1f%h%x1f%P%x1f%s%x1f%b%x1f%(trailers:only,unfold)",
                  "--end-of-options", spec, "--")
    commits = []
    for record in filter(None, raw.split("\0")):
        sha, short, parents, subject, body, trailer_text = record.strip("\n").split("\x1f", 5)
        trailers = {}
        for line in trailer_text.splitlines():
            key, sep, value = line.partition(":")
            if sep:
                trailers[key.strip()] = value.strip()
        commits.append(Commit(sha, short, subject, body, trailers, len(parents.split()) > 1))
    return commits


def next_version(previous: Version | None, commits: list[Commit]) -> Version | None:
    """The version the commits call for, or None when none of them is releasable."""
    if previous is None:
        return Version.parse(FIRST_VERSION)
    levels = [c.bump for c in commits if c.bump]
    if not levels:
        return None
    return previous.bump(max(levels, key=_LEVELS.index))


def render_section(tag: str, commits: list[Commit], runs: list[RunSummary], day: str) -> str:
    groups: dict[str, list[str]] = {"Breaking changes": [], "Features": [], "Fixes": [], "Other": []}
    for commit in commits:
        if commit.is_merge or _release_subject_version(commit.subject) is not None:
            continue
        if commit.breaking is not None:
            group = "Breaking changes"
        else:
            group = {"feat": "Features", "fix": "Fixes", "perf": "Fixes"}.get(commit.kind or "", "Other")
        groups[group].append(commit.line())
    parts = [f"## {tag} ({day})\n"]
    for title, lines in groups.items():
        if lines:
            parts.append(f"### {title}\n\n" + "\n".join(lines) + "\n")
    if runs:
        parts.append("### Runs\n\n" + "\n".join(r.line() for r in runs) + "\n")
    return "\n".join(parts)


def prepend_section(existing: str | None, section: str) -> str:
    """``existing`` with ``section`` above its newest release (after the title); older ones kept."""
    if not existing:
        return f"{CHANGELOG_TITLE}\n{section}"
    lines = existing.splitlines(keepends=True)
    at = next((i for i, line in enumerate(lines) if line.startswith("## ")), len(lines))
    head = "".join(lines[:at]).rstrip("\n")
    tail = "".join(lines[at:])
    return (head + "\n\n" if head else "") + section + ("\n" + tail if tail else "")


def section_of(changelog: str, tag: str) -> str | None:
    """The section of ``tag`` in a changelog's text."""
    match = re.search(rf"^## {re.escape(tag)}(?=\s|$).*?(?=^## |\Z)", changelog, re.MULTILINE | re.DOTALL)
    return match.group(0).rstrip("\n") + "\n" if match else None


def _release_subject_version(subject: str) -> str | None:
    match = re.match(r"^chore\(release\): (\S+)$", subject)
    return match.group(1) if match else None


def _parse_requested(text: str, prefix: str) -> Version:
    bare = text.strip()
    for strip in (prefix, "v"):
        if strip and bare.startswith(strip) and Version.parse(bare[len(strip):]):
            bare = bare[len(strip):]
    version = Version.parse(bare)
    if version is None:
        hint = " (build metadata `+...` is not allowed in a release tag)" if "+" in bare else ""
        raise UsageError(f"{text!r} is not a semantic version{hint}; give X.Y.Z, e.g. --version 1.4.0 or "
                         "--version 2.0.0-rc.1. Nothing was changed.")
    return version


def release_tags(git: Git, head: str, prefix: str) -> list[tuple[Version, str]]:
    """The release tags on ``head``'s history, oldest version first."""
    found = []
    for tag in git.out("for-each-ref", f"--merged={head}", "--format=%(refname:strip=2)", "refs/tags").splitlines():
        version = Version.parse(tag[len(prefix):]) if tag.startswith(prefix) else None
        if version is not None:
            found.append((version, tag))
    return sorted(found, key=lambda item: item[0].precedence())


def _run_summaries(commits: list[Commit], store: Any) -> list[RunSummary]:
    runs: dict[str, RunSummary] = {}
    for commit in reversed(commits):
        run_id = commit.trailers.get(RUN_TRAILER)
        if not run_id:
            continue
        if run_id not in runs:
            try:
                request = store.get_run(run_id).request if store is not None else None
            except UnknownRun:
                request = None
            runs[run_id] = RunSummary(run_id, request)
        task = commit.trailers.get(TASK_TRAILER)
        if task and task not in runs[run_id].tasks:
            runs[run_id].tasks.append(task)
    return list(runs.values())


def _changelog_at(git: Git, commit: str) -> str | None:
    proc = git.run("cat-file", "blob", f"{commit}:{CHANGELOG}", check=False)
    return proc.stdout if proc.returncode == 0 else None


def plan_release(git: Git, branch: str, prefix: str, store: Any, requested: str | None = None,
                 today: str | None = None) -> ReleasePlan:
    """What releasing ``branch`` now would do; raises ``UsageError`` (nothing changed) when it cannot."""
    names.check_branch(branch)
    head = git.rev(f"refs/heads/{branch}")
    if head is None:
        raise UsageError(f"the integration branch {branch!r} does not exist; set it with "
                         "`aigentflow config set git.integration_branch <branch>`")
    day = today or datetime.now(UTC).date().isoformat()
    head_subject = git.out("log", "-1", "--format=%s", head)
    pending = _release_subject_version(head_subject)
    if pending and pending.startswith(prefix) and Version.parse(pending[len(prefix):]):
        plan = _plan_resumed(git, branch, head, prefix, pending, store, day)
        if plan is not None:
            if requested is not None and _parse_requested(requested, prefix) != plan.version:
                raise UsageError(f"the head of {branch} is the release commit of {pending}, which an earlier "
                                 f"release left untagged; run `aigentflow release --version {plan.version}` (or "
                                 "without --version) to finish it first. Nothing was changed.")
            return plan
    tags = release_tags(git, head, prefix)
    previous, previous_tag = tags[-1] if tags else (None, None)
    commits = read_commits(git, previous_tag, head)
    if not commits:
        raise UsageError(f"nothing to release since {previous_tag}: it already tags the head of {branch}")
    if requested is not None:
        version = _parse_requested(requested, prefix)
        if previous is not None and version.precedence() <= previous.precedence():
            raise UsageError(f"version {version} is not greater than the last release {previous_tag}; give a "
                             "higher version. Nothing was changed.")
    else:
        computed = next_version(previous, commits)
        if computed is None:
            raise UsageError(f"nothing to release since {previous_tag}: no feat:, fix:, perf: or breaking commit "
                             "among the commits since; give --version X.Y.Z to release them anyway")
        version = computed
    tag = names.check_branch(f"{prefix}{version}")
    if git.rev(f"refs/tags/{tag}"):
        raise UsageError(f"the tag {tag} already exists (not on {branch}'s history); give another --version. "
                         "Nothing was changed.")
    runs = _run_summaries(commits, store)
    section = render_section(tag, commits, runs, day)
    changelog = prepend_section(_changelog_at(git, head), section)
    return ReleasePlan(branch, head, previous_tag, version, tag, commits, runs, section, changelog)


def _plan_resumed(git: Git, branch: str, head: str, prefix: str, tag: str, store: Any,
                  day: str) -> ReleasePlan | None:
    """The plan that finishes a release whose commit is the head; None when it is already finished."""
    tagged = git.rev(f"refs/tags/{tag}")
    if tagged is not None and (tagged != head or _recorded(store, tag)):
        return None
    tags = [(v, t) for v, t in release_tags(git, f"{head}^", prefix) if t != tag]
    previous_tag = tags[-1][1] if tags else None
    commits = read_commits(git, previous_tag, f"{head}^")
    runs = _run_summaries(commits, store)
    changelog = _changelog_at(git, head) or ""
    section = section_of(changelog, tag) or render_section(tag, commits, runs, day)
    version = Version.parse(tag[len(prefix):])
    assert version is not None
    return ReleasePlan(branch, head, previous_tag, version, tag, commits, runs, section, changelog, resumed=True)


def _recorded(store: Any, tag: str) -> bool:
    return store is not None and any(r.tag == tag for r in store.releases())


def check_worktree(git: Git, branch: str) -> None:
    """Refuse (nothing changed) when the checked-out ``branch`` could not follow the release commit."""
    worktree = checked_out_at(git, branch)
    if worktree is None:
        return
    if not Git(worktree).is_clean():
        raise UsageError(f"{branch} is checked out at {worktree} with uncommitted changes to tracked files; "
                         "commit or stash them, then run `aigentflow release` again. Nothing was changed.")
    tracked = Git(worktree).out("ls-files", "--", CHANGELOG)
    if not tracked and os.path.lexists(worktree / CHANGELOG):
        raise UsageError(f"{worktree / CHANGELOG} exists but is not committed; the release would overwrite it. "
                         "Commit or move it, then run `aigentflow release` again. Nothing was changed.")


def user_identity(git: Git) -> tuple[str, str] | None:
    """The repository's configured ``user.name`` and ``user.email``, when both are set."""
    name = git.run("config", "--get", "user.name", check=False).stdout.strip()
    email = git.run("config", "--get", "user.email", check=False).stdout.strip()
    return (name, email) if name and email else None


def commit_changelog(git: Git, parent: str, text: str, message: str) -> str:
    """A commit on ``parent`` whose only change is ``CHANGELOG.md``, built in a temporary index."""
    listed = git.out("ls-tree", parent, "--", CHANGELOG).split()
    mode = listed[0] if listed and listed[1] == "blob" else "100644"
    blob = git.out("hash-object", "-w", "--stdin", input=text)
    with tempfile.TemporaryDirectory(prefix="af-release-") as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        git.run("read-tree", parent, env=env)
        git.run("update-index", "--add", "--cacheinfo", f"{mode},{blob},{CHANGELOG}", env=env)
        tree = git.out("write-tree", env=env)
    return git.out("commit-tree", tree, "-p", parent, "-m", message)


def publish(git: Git, plan: ReleasePlan, store: Any, *, tenant_id: str = "default") -> dict[str, Any]:
    """Commit the changelog, move the branch, tag the commit and record the release."""
    with git.lock():
        recover(git)
        head = git.rev(f"refs/heads/{plan.branch}")
        if head != plan.head:
            raise UsageError(f"{plan.branch} moved while the release was prepared; run `aigentflow release` again")
        if plan.resumed:
            commit = plan.head
        else:
            check_worktree(git, plan.branch)
            commit = commit_changelog(git, plan.head, plan.changelog, RELEASE_SUBJECT.format(tag=plan.tag))
            move_branch(git, plan.branch, plan.head, commit)
        if git.rev(f"refs/tags/{plan.tag}") is None:
            git.run("tag", "-a", "--cleanup=whitespace", "-m", f"Release {plan.tag}\n\n{plan.section}",
                    "--end-of-options", plan.tag, commit)
    project = store.get_project()
    if project is None:
        raise UsageError("this project has no record in its state database; run `aigentflow init` and then "
                         f"`aigentflow release` again to record {plan.tag}")
    record = store.record_release(project_id=project["id"], version=str(plan.version), tag=plan.tag,
                                  commit_sha=commit, changelog=plan.section,
                                  run_ids=[r.run_id for r in plan.runs], tenant_id=tenant_id)
    return {**plan.report(), "commit": commit, "release_id": record.id}


def release(root: Path, *, version: str | None = None, dry_run: bool = False) -> dict[str, Any]:
    """``aigentflow release``: plan, then (unless ``dry_run``) commit, tag and record."""
    from aigentflow.config import load_config
    from aigentflow.paths import locate_project
    from aigentflow.store.sqlite import SQLiteRunStore

    paths = locate_project(root)
    config = load_config(paths.root)
    branch = str(config.get("git.integration_branch"))
    if not branch:
        raise UsageError("no integration branch is configured; set one with "
                         "`aigentflow config set git.integration_branch main`")
    prefix = str(config.get("git.tag_prefix"))
    identity = user_identity(Git(paths.root))
    git = Git(paths.root, author=identity)
    store = SQLiteRunStore(paths.database)
    try:
        plan = plan_release(git, branch, prefix, store, version)
        if dry_run:
            return {**plan.report(), "dry_run": True}
        return {**publish(git, plan, store, tenant_id=str(config.get("run.tenant"))), "dry_run": False}
    finally:
        store.close()
