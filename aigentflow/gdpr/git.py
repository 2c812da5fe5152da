"""Git: what names the subject in the repository's objects, and rewriting aigentflow's own run branches.

Only commits on ``refs/heads/aigentflow/...`` that no other ref reaches are rewritten (message, author,
committer, and the files of their trees); the user's branches and tags, and everything they reach, are
never touched: a hit there is reported as ``user_history`` and left for the user (``git filter-repo``).
A rewrite is a pure function of the objects (dates kept, signatures dropped), so redoing it after a crash
gives the same commits. ``finish`` then empties aigentflow's reflogs and drops unreachable objects
(``git repack -a -d``, ``git prune --expire=now``: any other unreachable object, a dropped stash, goes too).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from aigentflow.gdpr.hits import Hit, Unit
from aigentflow.gdpr.subject import Subject

RUN_REFS = "refs/heads/aigentflow/"
_ENV = {"GIT_CONFIG_NOSYSTEM": "1"}


def _git(root: Path, *args: str, data: bytes | None = None, check: bool = True) -> bytes:
    import os

    result = subprocess.run(["git", "-c", "core.hooksPath=/dev/null", *args], cwd=root, input=data,
                            capture_output=True, check=False, env={**os.environ, **_ENV})
    if check and result.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)}: {result.stderr.decode(errors='replace').strip()}")
    return result.stdout


def is_repository(root: Path) -> bool:
    return (root / ".git").exists()


def refs(root: Path) -> tuple[list[str], list[str]]:
    """(aigentflow's run branches, every other ref) as full ref names."""
    names = _git(root, "for-each-ref", "--format=%(refname)").decode().split()
    return [r for r in names if r.startswith(RUN_REFS)], [r for r in names if not r.startswith(RUN_REFS)]


def _objects(root: Path, *revs: str) -> set[str]:
    if not revs:
        return set()
    out = _git(root, "rev-list", "--objects", *revs, "--")
    return {line.split(" ", 1)[0] for line in out.decode().splitlines() if line}


def _batch(root: Path, shas: list[str]) -> dict[str, tuple[str, bytes]]:
    """Object id -> (type, content), read through one ``git cat-file --batch``."""
    if not shas:
        return {}
    out = _git(root, "cat-file", "--batch", data="\n".join(shas).encode() + b"\n")
    found: dict[str, tuple[str, bytes]] = {}
    position = 0
    while position < len(out):
        end = out.index(b"\n", position)
        header = out[position:end].decode().split()
        position = end + 1
        if len(header) < 3:  # "<sha> missing"
            continue
        size = int(header[2])
        found[header[0]] = (header[1], out[position:position + size])
        position += size + 1
    return found


def naming_objects(root: Path, subject: Subject) -> dict[str, tuple[str, bytes]]:
    """Every object in the repository (reachable or not) whose content names the subject."""
    listing = _git(root, "cat-file", "--batch-all-objects", "--batch-check=%(objectname) %(objecttype)")
    shas = [line.split()[0] for line in listing.decode().splitlines()
            if line.endswith((" blob", " commit", " tag"))]
    contents = _batch(root, shas)
    return {sha: item for sha, item in contents.items() if subject.byte_pattern.search(item[1])
            or subject.search(item[1].decode("utf-8", "replace"))}


def search_git(root: Path, subject: Subject) -> tuple[list[Unit], list[Hit]]:
    """(one unit per run branch whose own objects name the subject, hits in the user's history)."""
    if not is_repository(root):
        return [], []
    naming = naming_objects(root, subject)
    if not naming:
        return [], []
    run_refs, other_refs = refs(root)
    users = _objects(root, *other_refs)
    user_hits = [Hit("git", "user-history", {"object": sha, "type": kind, "user_history": True},
                     _describe(kind, content, subject)) for sha, (kind, content) in naming.items() if sha in users]
    units = []
    for ref in run_refs:
        own = _objects(root, ref, *(f"^{r}" for r in other_refs))
        branch = ref.removeprefix("refs/heads/")
        unit = Unit("git-branch", branch, "git")
        for sha in sorted(own & set(naming)):
            kind, content = naming[sha]
            unit.hits.append(Hit("git", unit.key, {"branch": branch, "object": sha, "type": kind},
                                 _describe(kind, content, subject)))
        if unit.hits:
            units.append(unit)
    return units, user_hits


def _describe(kind: str, content: bytes, subject: Subject) -> str:
    text = content.decode("utf-8", "replace")
    if kind == "commit":
        return text
    return "\n".join(line for line in text.splitlines() if subject.search(line))[:4000]


class Rewriter:
    """Rewrites the run-only commits of run branches (a memo of old -> new ids shared by all branches)."""

    def __init__(self, root: Path, subject: Subject, replacement: str) -> None:
        self.root, self.subject, self.replacement = root, subject, replacement
        self.commits: dict[str, str] = {}
        self.trees: dict[str, str] = {}

    def _clean(self, data: bytes) -> bytes:
        return self.subject.replace(data.decode("utf-8", "surrogateescape"), self.replacement).encode(
            "utf-8", "surrogateescape")

    def _write(self, kind: str, data: bytes) -> str:
        return _git(self.root, "hash-object", "-t", kind, "-w", "--stdin", data=data).decode().strip()

    def tree(self, sha: str) -> str:
        if sha in self.trees:
            return self.trees[sha]
        entries = _git(self.root, "ls-tree", "-z", sha).split(b"\0")
        rewritten, changed = [], False
        for entry in (e for e in entries if e):
            meta, name = entry.split(b"\t", 1)
            mode, kind, child = meta.decode().split()
            new_child = child
            if kind == "tree":
                new_child = self.tree(child)
            elif kind == "blob":
                content = _git(self.root, "cat-file", "blob", child)
                if self.subject.byte_pattern.search(content) or self.subject.search(content.decode("utf-8", "replace")):
                    new_child = self._write("blob", self._clean(content))
            new_name = self._clean(name)
            changed |= new_child != child or new_name != name
            rewritten.append(f"{mode} {kind} {new_child}\t".encode() + new_name)
        result = self._write_tree(rewritten) if changed else sha
        self.trees[sha] = result
        return result

    def _write_tree(self, entries: list[bytes]) -> str:
        return _git(self.root, "mktree", "-z", data=b"\0".join(entries) + b"\0").decode().strip()

    def commit(self, sha: str) -> str:
        raw = _git(self.root, "cat-file", "commit", sha)
        head, _, message = raw.partition(b"\n\n")
        lines, skipping = [], False
        for header in head.split(b"\n"):
            if header.startswith(b" ") and skipping:
                continue
            skipping = header.startswith((b"gpgsig ", b"gpgsig-sha256 "))
            if skipping:
                continue
            if header.startswith(b"tree "):
                lines.append(b"tree " + self.tree(header[5:].decode()).encode())
            elif header.startswith(b"parent "):
                parent = header[7:].decode()
                lines.append(b"parent " + self.commits.get(parent, parent).encode())
            else:
                lines.append(self._clean(header))
        new = self._write("commit", b"\n".join(lines) + b"\n\n" + self._clean(message))
        self.commits[sha] = new
        return new

    def branch(self, branch: str) -> str | None:
        """Rewrite the branch's run-only commits, move the branch; its new head (None: unchanged)."""
        ref = f"refs/heads/{branch}"
        old = _git(self.root, "rev-parse", "--verify", "-q", ref, check=False).decode().strip()
        if not old:
            return None
        _, others = refs(self.root)
        own = _git(self.root, "rev-list", "--reverse", "--topo-order", ref, *(f"^{r}" for r in others), "--")
        for sha in own.decode().split():
            if sha not in self.commits:
                self.commit(sha)
        new = self.commits.get(old, old)
        if new == old:
            return None
        _git(self.root, "update-ref", ref, new, old)
        return new


def checked_out(root: Path) -> dict[str, Path]:
    """Branch -> the worktree it is checked out in."""
    found: dict[str, Path] = {}
    path: Path | None = None
    for line in _git(root, "worktree", "list", "--porcelain").decode().splitlines():
        if line.startswith("worktree "):
            path = Path(line[9:])
        elif line.startswith("branch ") and path is not None:
            found[line[7:].removeprefix("refs/heads/")] = path
    return found


def refresh_worktree(path: Path) -> None:
    """After its branch moved: the index read from the new HEAD (the old one held the old blobs)."""
    _git(path, "read-tree", "HEAD")
    _git(path, "update-index", "-q", "--refresh", check=False)


def finish(root: Path, worktrees_dir: Path) -> None:
    """Empty aigentflow's own reflogs (they hold the old commits) and drop unreachable objects."""
    common = root / ".git"
    logs = common / "logs" / "refs" / "heads" / "aigentflow"
    targets = list(logs.rglob("*")) if logs.is_dir() else []
    worktree_meta = common / "worktrees"
    if worktree_meta.is_dir():
        for meta in worktree_meta.iterdir():
            gitdir = meta / "gitdir"
            try:
                location = Path(gitdir.read_text().strip()).parent
            except OSError:
                continue
            if location.is_relative_to(worktrees_dir):
                targets += [meta / "logs" / "HEAD", meta / "ORIG_HEAD"]
    for target in targets:
        if target.is_file():
            target.write_bytes(b"") if target.name != "ORIG_HEAD" else target.unlink()
    _git(root, "repack", "-a", "-d", "-q")
    _git(root, "prune", "--expire=now")
