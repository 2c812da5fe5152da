"""Deterministic facts about a git repository: the agents' "project context" prompt layer.

Everything here is derived from the files git would show (tracked, plus untracked files that are
not ignored), never from the absolute location of the repository, so two clones in different
directories give identical facts and identical prompt hashes.
"""

from __future__ import annotations

import os
import stat
import subprocess
from collections import Counter
from pathlib import Path, PurePosixPath

from pydantic import BaseModel, Field

from aigentflow.exceptions import NotAGitRepository, UsageError
from aigentflow.project.ecosystems import (
    MAX_LINE_COUNTED_FILE_BYTES,
    Repo,
    declared_name,
    detect_ecosystems,
    is_test_file,
)

EXCLUDED_TOP_DIRS = frozenset({".aigentflow", ".git"})
MAX_LINE_COUNTED_FILES = 10_000
MAX_LINE_COUNTED_TOTAL_BYTES = 64_000_000
MAX_KEY_FILES = 24
GIT_TIMEOUT_SECONDS = 60

CODE_LANGUAGES: dict[str, str] = {
    ".py": "Python", ".pyi": "Python",
    ".js": "JavaScript", ".mjs": "JavaScript", ".cjs": "JavaScript", ".jsx": "JavaScript",
    ".ts": "TypeScript", ".tsx": "TypeScript", ".mts": "TypeScript", ".cts": "TypeScript",
    ".go": "Go", ".rs": "Rust", ".java": "Java", ".kt": "Kotlin", ".kts": "Kotlin",
    ".rb": "Ruby", ".c": "C", ".h": "C",
    ".cc": "C++", ".cpp": "C++", ".cxx": "C++", ".hh": "C++", ".hpp": "C++", ".hxx": "C++",
    ".cs": "C#", ".php": "PHP", ".swift": "Swift", ".scala": "Scala", ".lua": "Lua",
    ".sh": "Shell", ".bash": "Shell", ".zsh": "Shell",
}
DOC_EXTENSIONS = frozenset({".md", ".markdown", ".rst", ".adoc"})
KEY_MANIFESTS = ("pyproject.toml", "package.json", "setup.cfg", "Cargo.toml", "go.mod")



class ProjectFacts(BaseModel):
    """What a repository is made of, measured from its files; no absolute paths."""

    name: str
    languages: dict[str, int] = Field(default_factory=dict)
    primary_language: str | None = None
    package_manager: str | None = None
    test_command: str | None = None
    frameworks: list[str] = Field(default_factory=list)
    entry_points: list[str] = Field(default_factory=list)
    file_count: int = 0
    doc_file_count: int = 0
    line_count: int = 0
    size_bytes: int = 0
    has_tests: bool = False
    test_file_count: int = 0


class SnapshotFile(BaseModel):
    """One file of a snapshot; ``lines`` is None for binary or very large files."""

    path: str
    size: int
    lines: int | None = None


class RepoSnapshot(BaseModel):
    """A bounded picture of a repository for an agent that cannot see the repository itself."""

    name: str
    total_files: int
    files: list[SnapshotFile] = Field(default_factory=list)
    key_files: dict[str, str] = Field(default_factory=dict)
    truncated_key_files: list[str] = Field(default_factory=list)
    truncated: bool = False


def list_visible_files(root: Path) -> dict[str, int]:
    """Tracked and untracked-but-not-ignored regular files (POSIX path -> size), sorted by path."""
    command = [
        "git", "-c", "core.hooksPath=/dev/null", "-C", str(root),
        "ls-files", "--cached", "--others", "--exclude-standard", "-z",
    ]
    # A caller running inside a git hook may have these set; they would point git elsewhere.
    env = {k: v for k, v in os.environ.items() if k not in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE")}
    try:
        result = subprocess.run(command, capture_output=True, env=env, timeout=GIT_TIMEOUT_SECONDS, check=False)
    except FileNotFoundError:
        raise UsageError("git was not found on PATH; install git so aigentflow can read the project") from None
    if result.returncode != 0:
        message = result.stderr.decode(errors="replace").strip()
        if "not a git repository" in message:
            raise NotAGitRepository(f"{root} is not inside a git repository. Run `git init` there first.")
        raise UsageError(f"`git ls-files` failed in {root}: {message}")
    sizes: dict[str, int] = {}
    for raw in sorted(set(result.stdout.split(b"\0"))):
        path = raw.decode("utf-8", errors="replace")
        parts = PurePosixPath(path).parts
        if not parts or parts[0] in EXCLUDED_TOP_DIRS or ".git" in parts:
            continue
        try:
            info = os.lstat(root / path)
        except OSError:  # tracked but deleted from the work tree
            continue
        if stat.S_ISREG(info.st_mode):
            sizes[path] = info.st_size
    return sizes


def _count_languages(paths: list[str]) -> dict[str, int]:
    suffixes = (PurePosixPath(path).suffix.lower() for path in paths)
    counts = Counter(CODE_LANGUAGES[suffix] for suffix in suffixes if suffix in CODE_LANGUAGES)
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def language_of(paths: list[str]) -> str | None:
    """The language most of ``paths`` are in (``CODE_LANGUAGES``), or None when none is code."""
    return next(iter(_count_languages(paths)), None)


def _total_lines(repo: Repo) -> int:
    """Lines of the text files, reading at most a bounded number of files and bytes."""
    total = files_read = bytes_read = 0
    for path, size in repo.sizes.items():
        if size > MAX_LINE_COUNTED_FILE_BYTES:
            continue
        if files_read >= MAX_LINE_COUNTED_FILES or bytes_read + size > MAX_LINE_COUNTED_TOTAL_BYTES:
            break
        files_read += 1
        bytes_read += size
        total += repo.lines(path) or 0
    return total


def detect_facts(root: Path) -> ProjectFacts:
    """Measure the repository at ``root``: languages, tooling, entry points, size and tests."""
    return detect_project(root)[0]


def detect_project(root: Path) -> tuple[ProjectFacts, str | None]:
    """The facts, and where the test command came from ("tox.ini [testenv] commands", ...): shown by
    `init`, kept out of the facts the agents get (the same facts give the same prompts)."""
    root = Path(root).resolve()
    repo = Repo(root, list_visible_files(root))
    paths = list(repo.sizes)
    languages = _count_languages(paths)
    primary = next(iter(languages), None)
    ecosystems = detect_ecosystems(repo)
    chosen = next((eco for eco in ecosystems if primary in eco.languages), None)
    chosen = chosen or (ecosystems[0] if ecosystems else None)
    test_file_count = sum(1 for path in paths if is_test_file(path))
    facts = ProjectFacts(
        name=declared_name(repo),
        languages=languages,
        primary_language=primary,
        package_manager=chosen.package_manager if chosen else None,
        test_command=chosen.test_command if chosen else None,
        frameworks=sorted(set().union(*(eco.frameworks for eco in ecosystems))),
        entry_points=sorted(set().union(*(eco.entry_points for eco in ecosystems))),
        file_count=len(paths),
        doc_file_count=sum(1 for path in paths if PurePosixPath(path).suffix.lower() in DOC_EXTENSIONS),
        line_count=_total_lines(repo),
        size_bytes=sum(repo.sizes.values()),
        has_tests=test_file_count > 0,
        test_file_count=test_file_count,
    )
    return facts, chosen.test_source if chosen and chosen.test_command else None


def _key_file_paths(repo: Repo) -> list[str]:
    readmes = [path for path in repo.sizes if "/" not in path and path.lower().startswith("readme")]
    manifests = [name for name in KEY_MANIFESTS if repo.has(name)]
    entry_files = sorted(set().union(*(eco.entry_files for eco in detect_ecosystems(repo))))
    chosen = list(dict.fromkeys(readmes + manifests + entry_files))[:MAX_KEY_FILES]
    return sorted(chosen)


def snapshot_repository(root: Path, max_files: int = 300, max_key_file_bytes: int = 4000) -> RepoSnapshot:
    """A bounded listing and the heads of key files, for an agent on a machine without the repo."""
    root = Path(root).resolve()
    repo = Repo(root, list_visible_files(root))
    # Shallow paths first: a capped listing should show the project's shape, not one deep folder.
    by_depth = sorted(repo.sizes, key=lambda path: (path.count("/"), path))
    listed = sorted(by_depth[:max_files])
    files = [SnapshotFile(path=path, size=repo.sizes[path], lines=repo.lines(path)) for path in listed]
    key_files: dict[str, str] = {}
    cut: list[str] = []
    for path in _key_file_paths(repo):
        with (root / path).open("rb") as handle:
            head = handle.read(max_key_file_bytes + 1)
        if len(head) > max_key_file_bytes:
            cut.append(path)
            head = head[:max_key_file_bytes]
        key_files[path] = head.decode("utf-8", errors="ignore")
    return RepoSnapshot(
        name=root.name,
        total_files=len(repo.sizes),
        files=files,
        key_files=key_files,
        truncated_key_files=cut,
        truncated=len(listed) < len(repo.sizes) or bool(cut),
    )


def _human_size(size_bytes: int) -> str:
    size, unit = float(size_bytes), "B"
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            break
        size /= 1024
    return f"{size_bytes} B" if unit == "B" else f"{size:.1f} {unit}"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def render_facts(facts: ProjectFacts) -> str:
    """A short markdown description of the project for the agents' project-context layer."""
    languages = ", ".join(f"{name} ({_count(count, 'file')})" for name, count in facts.languages.items())
    test_command = f"`{facts.test_command}`" if facts.test_command else "none detected"
    lines = [
        f"## Project: {facts.name}",
        "",
        f"- Languages: {languages or 'none detected'}",
        f"- Primary language: {facts.primary_language or 'none detected'}",
        f"- Package manager: {facts.package_manager or 'none detected'}",
        f"- Test command: {test_command}",
        f"- Frameworks: {', '.join(facts.frameworks) or 'none detected'}",
        f"- Entry points: {', '.join(facts.entry_points) or 'none detected'}",
        f"- Size: {_count(facts.file_count, 'file')}, {_count(facts.line_count, 'line')} of text, "
        f"{_human_size(facts.size_bytes)}",
        f"- Tests: {_count(facts.test_file_count, 'test file')}" if facts.has_tests else "- Tests: none found",
    ]
    return "\n".join(lines) + "\n"
