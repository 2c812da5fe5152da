"""What a release would do: the version it starts from, the next version, the changelog section."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

from aigentflow.exceptions import UnknownRun, UsageError
from aigentflow.gitops import names
from aigentflow.gitops.runner import Git
from aigentflow.release.commits import (
    RUN_TRAILER,
    TASK_TRAILER,
    Commit,
    next_version,
    prepend_section,
    read_commits,
    release_subject_version,
    render_section,
    section_of,
)
from aigentflow.release.declared import Declared, declared_version
from aigentflow.release.versions import Version, parse_requested, tag_version

CHANGELOG = "CHANGELOG.md"
FIRST_VERSION = Version(0, 1, 0)


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


@dataclass(frozen=True)
class Base:
    """The version a release starts from: the latest release tag or the declared version, the higher."""

    tag: str | None
    tag_version: Version | None
    declared: Declared | None

    @property
    def source(self) -> str:
        """``tag``, ``declared`` or ``none``; a tag wins a tie (the commits since it are the release's)."""
        if self.declared and (self.tag_version is None
                              or self.declared.version.precedence() > self.tag_version.precedence()):
            return "declared"
        return "tag" if self.tag else "none"

    @property
    def version(self) -> Version | None:
        return {"declared": self.declared and self.declared.version, "tag": self.tag_version}.get(self.source)

    def describe(self) -> str:
        declared = self.declared
        if self.source == "declared" and declared:
            also = f", higher than the latest tag {self.tag}" if self.tag else ", no release tag yet"
            return f"from {declared.describe()}{also}"
        if self.source == "tag":
            if declared is None:
                return f"from tag {self.tag}"
            same = declared.version == self.tag_version
            return f"from tag {self.tag} ({declared.file} declares {'the same' if same else declared.value})"
        return f"first release: no release tag and no declared version, so {FIRST_VERSION}"

    def since(self) -> str:
        return f"since {self.tag}" if self.tag else (f"from {self.declared.describe()}" if self.declared else "")

    def to_dict(self) -> dict[str, Any]:
        version = self.version
        return {"source": self.source, "version": str(version) if version else None, "tag": self.tag,
                "declared": self.declared.to_dict() if self.declared else None, "text": self.describe()}


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
    base: Base
    prefix: str
    resumed: bool = False
    """The ``chore(release)`` commit is already the branch head (an earlier release stopped there)."""

    def notes(self) -> list[str]:
        """What the user may want to do besides the release."""
        prefix = self.prefix
        notes = []
        declared = self.base.declared
        if declared and declared.version != self.version:
            notes.append(f"{declared.file} still declares {declared.field or 'version'} {declared.value}; set it "
                         f"to {self.version} so that the package matches the tag (the release changes only "
                         f"{CHANGELOG}).")
        if self.base.tag and prefix and not self.base.tag.startswith(prefix):
            notes.append(f"the latest tag {self.base.tag} has no {prefix!r} prefix but the new one will "
                         f"({self.tag}); to tag like the project does, run `aigentflow config set git.tag_prefix "
                         "\"\"`.")
        return notes

    def report(self) -> dict[str, Any]:
        return {"branch": self.branch, "version": str(self.version), "tag": self.tag,
                "previous_tag": self.previous_tag, "commits": len(self.commits), "resumed": self.resumed,
                "based_on": self.base.to_dict(), "notes": self.notes(),
                "runs": [asdict(r) for r in self.runs], "changelog": self.section}


def release_tags(git: Git, head: str, prefix: str) -> list[tuple[Version, str]]:
    """The release tags on ``head``'s history (``<prefix>X.Y.Z``, ``vX.Y.Z``, ``X.Y.Z``), oldest first; of
    two tags naming one version, the one with ``prefix`` sorts last."""
    found = []
    for tag in git.out("for-each-ref", f"--merged={head}", "--format=%(refname:strip=2)", "refs/tags").splitlines():
        version = tag_version(tag, prefix)
        if version is not None:
            found.append((version, tag))
    return sorted(found, key=lambda item: (item[0].precedence(), bool(prefix) and item[1].startswith(prefix)))


def find_base(git: Git, head: str, prefix: str, *, skip_tag: str | None = None) -> Base:
    tags = [(v, t) for v, t in release_tags(git, head, prefix) if t != skip_tag]
    latest_version, latest_tag = tags[-1] if tags else (None, None)
    return Base(latest_tag, latest_version, declared_version(git, head))


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


def changelog_at(git: Git, commit: str) -> str | None:
    proc = git.run("cat-file", "blob", f"{commit}:{CHANGELOG}", check=False)
    return proc.stdout if proc.returncode == 0 else None


def _check_requested(version: Version, base: Base) -> None:
    if base.tag_version is not None and version.precedence() <= base.tag_version.precedence():
        raise UsageError(f"version {version} is not greater than the last release {base.tag}; give a "
                         "higher version. Nothing was changed.")
    declared = base.declared
    if declared and version.precedence() < declared.version.precedence():
        raise UsageError(f"version {version} is lower than the version {declared.file} declares "
                         f"({declared.value}); give {declared.version} or higher. Nothing was changed.")


def _computed(base: Base, commits: list[Commit]) -> Version:
    if base.version is None:
        return FIRST_VERSION
    computed = next_version(base.version, commits)
    if computed is None:
        as_is = (f", or --version {base.declared.version} to tag the version {base.declared.file} declares"
                 if base.source == "declared" and base.declared else "")
        raise UsageError(f"nothing to release {base.since()}: none of the {len(commits)} commits is a feature, "
                         "fix, change or breaking change (`feat:`, `fix:`, `perf:`, `type!:`, or a subject "
                         "starting with Add, Fix, Remove, Update, ...); give --version X.Y.Z to release them "
                         f"anyway{as_is}. Nothing was changed.")
    return computed


def plan_release(git: Git, branch: str, prefix: str, store: Any, requested: str | None = None,
                 today: str | None = None) -> ReleasePlan:
    """What releasing ``branch`` now would do; raises ``UsageError`` (nothing changed) when it cannot."""
    names.check_branch(branch)
    head = git.rev(f"refs/heads/{branch}")
    if head is None:
        raise UsageError(f"the integration branch {branch!r} does not exist; set it with "
                         "`aigentflow config set git.integration_branch <branch>`")
    day = today or datetime.now(UTC).date().isoformat()
    pending = release_subject_version(git.out("log", "-1", "--format=%s", head))
    if pending and pending.startswith(prefix) and Version.parse(pending[len(prefix):]):
        plan = _plan_resumed(git, branch, head, prefix, pending, store, day)
        if plan is not None:
            if requested is not None and parse_requested(requested, prefix) != plan.version:
                raise UsageError(f"the head of {branch} is the release commit of {pending}, which an earlier "
                                 f"release left untagged; run `aigentflow release --version {plan.version}` (or "
                                 "without --version) to finish it first. Nothing was changed.")
            return plan
    base = find_base(git, head, prefix)
    commits = read_commits(git, base.tag, head)
    if not commits:
        raise UsageError(f"nothing to release since {base.tag}: it already tags the head of {branch}")
    if requested is not None:
        version = parse_requested(requested, prefix)
        _check_requested(version, base)
    else:
        version = _computed(base, commits)
    tag = names.check_branch(f"{prefix}{version}")
    if git.rev(f"refs/tags/{tag}"):
        raise UsageError(f"the tag {tag} already exists (not on {branch}'s history); give another --version. "
                         "Nothing was changed.")
    runs = _run_summaries(commits, store)
    section = render_section(tag, commits, runs, day)
    changelog = prepend_section(changelog_at(git, head), section)
    return ReleasePlan(branch, head, base.tag, version, tag, commits, runs, section, changelog, base, prefix)


def _plan_resumed(git: Git, branch: str, head: str, prefix: str, tag: str, store: Any,
                  day: str) -> ReleasePlan | None:
    """The plan that finishes a release whose commit is the head; None when it is already finished."""
    tagged = git.rev(f"refs/tags/{tag}")
    if tagged is not None and (tagged != head or _recorded(store, tag)):
        return None
    base = find_base(git, f"{head}^", prefix, skip_tag=tag)
    commits = read_commits(git, base.tag, f"{head}^")
    runs = _run_summaries(commits, store)
    changelog = changelog_at(git, head) or ""
    section = section_of(changelog, tag) or render_section(tag, commits, runs, day)
    version = Version.parse(tag[len(prefix):])
    assert version is not None
    return ReleasePlan(branch, head, base.tag, version, tag, commits, runs, section, changelog, base,
                       prefix, resumed=True)


def _recorded(store: Any, tag: str) -> bool:
    return store is not None and any(r.tag == tag for r in store.releases())
