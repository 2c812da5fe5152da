"""Commits as a changelog sees them: their group, the bump they call for, the line they get.

Conventional commits keep their meaning: ``feat:`` is a feature (minor), ``fix:`` a fix (patch),
``perf:`` a change (patch), ``refactor:``/``revert:`` changes and ``docs:`` documentation (no bump),
``chore:``/``test:``/``ci:``/``build:``/``style:`` other (no bump). Other subjects (most projects')
are grouped by their leading word, also in numpy's ``BUG:``/``ENH:`` style:

- Fix, Fixed, Fixes, Bug, Bugfix, Correct, Resolve, Repair, Prevent, Avoid, Handle: fixes (patch);
- Add, Added, Implement, Support, Introduce, New, Allow, Enable, ENH: features (minor);
- Remove, Drop, Delete, Deprecate: "Removed and deprecated" (minor: a removal is not breaking
  unless the commit says so);
- Update, Improve, Refactor, Speed up, Change, Rename, Make, Use, Optimize, Simplify, MAINT: changes
  (patch);
- Docs, Doc, Document, README: documentation (no bump), also a fix or change whose next words are
  about the documentation ("Fix typo in docs", "Update README");
- anything else (Bump, Release, Merge, ...): other (no bump).

A breaking change is a subject starting ``BREAKING:`` / ``BREAKING CHANGE:``, a ``type!:`` /
``type(scope)!:`` subject, or a ``BREAKING CHANGE:`` / ``BREAKING-CHANGE:`` footer; it bumps the major
version and its line keeps the breaking text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from aigentflow.gitops.runner import Git
from aigentflow.release.versions import Version, highest_level

BREAKING, FEATURES, FIXES, REMOVED, CHANGES, DOCS, OTHER = (
    "Breaking changes", "Features", "Fixes", "Removed and deprecated", "Changes", "Documentation", "Other")
GROUPS = (BREAKING, FEATURES, FIXES, REMOVED, CHANGES, DOCS, OTHER)
GROUP_BUMPS = {BREAKING: "major", FEATURES: "minor", FIXES: "patch", REMOVED: "minor", CHANGES: "patch"}
CONVENTIONAL_TYPES = {"feat": (FEATURES, "minor"), "fix": (FIXES, "patch"), "perf": (CHANGES, "patch"),
                      "refactor": (CHANGES, None), "revert": (CHANGES, None), "docs": (DOCS, None)}
_WORDS = {
    FIXES: "fix bug bugfix bugfixes hotfix correct resolve repair prevent avoid handle",
    FEATURES: "add implement support introduce new allow enable enh feature",
    REMOVED: "remove drop dropped delete deprecate",
    CHANGES: "update improve refactor speed change rename make use optimize optimise simplify simplified "
             "rework rewrite replace tweak clean cleanup maint perf",
    DOCS: "doc docs document documentation readme docstring docstrings typo",
}
VERBS = {word: group for group, words in _WORDS.items() for word in words.split()}
_CONVENTIONAL = re.compile(r"^(?P<kind>[A-Za-z]+)(?:\((?P<scope>[^()]*)\))?(?P<bang>!)?:\s+(?P<text>.+)$")
_BREAKING_SUBJECT = re.compile(r"^BREAKING(?:[ -]CHANGES?)?\s*[:!]\s*(?P<text>.+)$", re.IGNORECASE)
_BREAKING_FOOTER = re.compile(r"^BREAKING[ -]CHANGE:\s*(.*)$", re.MULTILINE)
RELEASE_SUBJECT = "chore(release): {tag}"
RUN_TRAILER, TASK_TRAILER = "Aigentflow-Run", "Aigentflow-Task"


def _stems(word: str) -> list[str]:
    word = word.lower()
    return [word] + [word[: -len(end)] for end in ("ing", "es", "ed", "s", "d") if word.endswith(end)]


def group_of_words(text: str) -> str:
    """The group a non-conventional subject belongs to, from its leading word; a fix or change of the
    documentation ("Fix typo in docs", "Update README") is documentation."""
    words = re.findall(r"[A-Za-z]+", text)[:4]
    if not words:
        return OTHER
    group = next((VERBS[s] for s in _stems(words[0]) if s in VERBS), OTHER)
    if group in (FIXES, CHANGES) and any(VERBS.get(w.lower()) == DOCS for w in words[1:]):
        return DOCS
    return group


@dataclass(frozen=True)
class Commit:
    sha: str
    short: str
    subject: str
    body: str
    trailers: dict[str, str]
    is_merge: bool

    @cached_property
    def conventional(self) -> re.Match[str] | None:
        return _CONVENTIONAL.match(self.subject)

    @property
    def kind(self) -> str | None:
        """The conventional type (``feat``, ``fix``, ...), or None."""
        match = self.conventional
        return match.group("kind").lower() if match else None

    @cached_property
    def breaking(self) -> str | None:
        """The breaking-change note ("" when only the subject marks it), or None."""
        footer = _BREAKING_FOOTER.search(self.body)
        if footer:
            return footer.group(1).strip()
        if _BREAKING_SUBJECT.match(self.subject) or (self.conventional and self.conventional.group("bang")):
            return ""
        return None

    @cached_property
    def text(self) -> str:
        """The subject without its type, scope or ``BREAKING:`` marker."""
        marked = _BREAKING_SUBJECT.match(self.subject)
        if marked:
            return marked.group("text").strip()
        return self.conventional.group("text") if self.conventional else self.subject

    @cached_property
    def group(self) -> str:
        if self.breaking is not None:
            return BREAKING
        if self.kind in CONVENTIONAL_TYPES:
            return CONVENTIONAL_TYPES[self.kind][0]
        if self.conventional and self.kind in ("chore", "test", "tests", "ci", "build", "style"):
            return OTHER
        return group_of_words(self.subject)  # also "Fixed: ...", "BUG: ...", "ENH: ..."

    @property
    def bump(self) -> str | None:
        """``major``, ``minor``, ``patch``, or None (a commit that releases nothing by itself)."""
        if self.kind in CONVENTIONAL_TYPES and self.breaking is None:
            return CONVENTIONAL_TYPES[self.kind][1]
        return GROUP_BUMPS.get(self.group)

    @property
    def listed(self) -> bool:
        """Whether the changelog lists it (merges and release commits are left out)."""
        return not self.is_merge and release_subject_version(self.subject) is None

    def line(self) -> str:
        match = self.conventional if not _BREAKING_SUBJECT.match(self.subject) else None
        scope = f"**{match.group('scope')}:** " if match and match.group("scope") else ""
        note = f": {self.breaking}" if self.breaking else ""
        return f"- {scope}{self.text}{note} ({self.short})"


def release_subject_version(subject: str) -> str | None:
    match = re.match(r"^chore\(release\): (\S+)$", subject)
    return match.group(1) if match else None


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


def next_version(base: Version, commits: list[Commit]) -> Version | None:
    """The version the commits call for after ``base``, or None when none of them is releasable."""
    level = highest_level([c.bump for c in commits if c.listed and c.bump])
    return base.bump(level) if level else None


def render_section(tag: str, commits: list[Commit], runs: list[Any], day: str) -> str:
    groups: dict[str, list[str]] = {title: [] for title in GROUPS}
    for commit in commits:
        if commit.listed:
            groups[commit.group].append(commit.line())
    parts = [f"## {tag} ({day})\n"]
    for title, lines in groups.items():
        if lines:
            parts.append(f"### {title}\n\n" + "\n".join(lines) + "\n")
    if runs:
        parts.append("### Runs\n\n" + "\n".join(r.line() for r in runs) + "\n")
    return "\n".join(parts)


CHANGELOG_TITLE = "# Changelog\n"


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
