"""Deterministic facts about a git repository: the agents' "project context" prompt layer.

Everything here is derived from the files git would show (tracked, plus untracked files that are
not ignored), never from the absolute location of the repository, so two clones in different
directories give identical facts and identical prompt hashes.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import stat
import subprocess
import tomllib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import BaseModel, Field

from aigentflow.exceptions import NotAGitRepository, UsageError

EXCLUDED_TOP_DIRS = frozenset({".aigentflow", ".git"})
MAX_LINE_COUNTED_FILE_BYTES = 1_000_000
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

PYTHON_FRAMEWORKS = frozenset({
    "aiohttp", "alembic", "celery", "click", "django", "dspy", "fastapi", "flask", "gradio",
    "httpx", "hypothesis", "litellm", "numpy", "pandas", "pydantic", "pyramid", "pytest", "ray",
    "requests", "rich", "scikit-learn", "sqlalchemy", "starlette", "streamlit", "tensorflow",
    "textual", "torch", "tornado", "typer",
})
JAVASCRIPT_FRAMEWORKS = {
    "react": "react", "vue": "vue", "svelte": "svelte", "@angular/core": "angular",
    "express": "express", "next": "next", "nuxt": "nuxt", "@nestjs/core": "nestjs", "koa": "koa",
    "fastify": "fastify", "jest": "jest", "mocha": "mocha", "vitest": "vitest",
    "@playwright/test": "playwright", "cypress": "cypress", "electron": "electron",
}
RUST_FRAMEWORKS = frozenset({"actix-web", "axum", "clap", "rocket", "serde", "tokio", "warp"})
GO_FRAMEWORKS = {
    "github.com/gin-gonic/gin": "gin", "github.com/labstack/echo": "echo",
    "github.com/gofiber/fiber": "fiber", "github.com/spf13/cobra": "cobra",
    "github.com/gorilla/mux": "gorilla/mux",
}
RUBY_FRAMEWORKS = frozenset({"rails", "sinatra", "rspec", "minitest"})
NPM_DEFAULT_TEST_SCRIPT = 'echo "Error: no test specified" && exit 1'


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


@dataclass
class _Ecosystem:
    """What one language ecosystem's manifests say about the project."""

    languages: tuple[str, ...]
    package_manager: str | None = None
    test_command: str | None = None
    frameworks: set[str] = field(default_factory=set)
    entry_points: set[str] = field(default_factory=set)
    entry_files: set[str] = field(default_factory=set)

    def add_entry_file(self, path: str) -> None:
        self.entry_points.add(path)
        self.entry_files.add(path)


@dataclass
class _Repo:
    """The visible files of a repository (path -> size) and helpers to read its manifests."""

    root: Path
    sizes: dict[str, int]

    def has(self, path: str) -> bool:
        return path in self.sizes

    def text(self, path: str) -> str:
        if not self.has(path) or self.sizes[path] > MAX_LINE_COUNTED_FILE_BYTES:
            return ""
        return (self.root / path).read_bytes().decode("utf-8", errors="replace")

    def lines(self, path: str) -> int | None:
        """Lines of a text file; None for a binary file or one too large to read."""
        if self.sizes[path] > MAX_LINE_COUNTED_FILE_BYTES:
            return None
        return _count_lines(self.root / path)

    def toml(self, path: str) -> dict[str, Any]:
        try:
            return tomllib.loads(self.text(path))
        except tomllib.TOMLDecodeError:
            return {}

    def json(self, path: str) -> dict[str, Any]:
        try:
            data = json.loads(self.text(path) or "{}")
        except json.JSONDecodeError:
            return {}
        return data if isinstance(data, dict) else {}


def list_visible_files(root: Path) -> dict[str, int]:
    """Tracked and untracked-but-not-ignored regular files (POSIX path -> size), sorted by path."""
    command = [
        "git", "-c", "core.hooksPath=/dev/null", "-C", str(root),
        "ls-files", "--cached", "--others", "--exclude-standard", "-z",
    ]
    # A caller running inside a git hook may have these set; they would point git elsewhere.
    env = {k: v for k, v in os.environ.items() if k not in ("GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE")}
    try:
        result = subprocess.run(command, capture_output=True, env=env, timeout=GIT_TIMEOUT_SECONDS)
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


def _count_lines(path: Path) -> int | None:
    """Lines of a text file; None for a binary file or one that cannot be read."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if b"\0" in data[:8192]:
        return None
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


def is_test_file(path: str) -> bool:
    """Whether a path looks like a test file in any of the ecosystems detected here."""
    pure = PurePosixPath(path)
    name, parts = pure.name, pure.parts[:-1]
    if pure.suffix == ".py":
        return name.startswith("test_") or name.endswith("_test.py")
    if pure.suffix in {".js", ".jsx", ".ts", ".tsx", ".mjs", ".cjs"}:
        return ".test." in name or ".spec." in name or "__tests__" in parts
    if pure.suffix == ".go":
        return name.endswith("_test.go")
    if pure.suffix == ".rs":
        return bool(parts) and parts[0] == "tests"
    if pure.suffix in {".java", ".kt"}:
        return pure.stem.endswith(("Test", "Tests")) or "src/test" in pure.parent.as_posix()
    if pure.suffix == ".rb":
        return name.endswith(("_spec.rb", "_test.rb"))
    return False


def _requirement_name(requirement: str) -> str | None:
    """The normalised distribution name at the start of a PEP 508 requirement string."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    return re.sub(r"[-_.]+", "-", match.group(1)).lower() if match else None


def _python_dependency_names(repo: _Repo, pyproject: dict[str, Any]) -> set[str]:
    requirements: list[str] = list(pyproject.get("project", {}).get("dependencies", []))
    for group in pyproject.get("project", {}).get("optional-dependencies", {}).values():
        requirements.extend(group)
    for group in pyproject.get("dependency-groups", {}).values():
        requirements.extend(item for item in group if isinstance(item, str))
    poetry = pyproject.get("tool", {}).get("poetry", {})
    tables = [poetry.get("dependencies", {}), poetry.get("dev-dependencies", {})]
    tables += [group.get("dependencies", {}) for group in poetry.get("group", {}).values()]
    requirements.extend(name for table in tables for name in table)
    for path in repo.sizes:
        if re.fullmatch(r"requirements[^/]*\.txt|requirements/[^/]+\.txt", path):
            requirements.extend(line for line in repo.text(path).splitlines() if not line.startswith("-"))
    names = {_requirement_name(requirement) for requirement in requirements}
    return {name for name in names if name}


def _python_module_file(repo: _Repo, target: str) -> str | None:
    """The file defining ``package.module`` of a ``package.module:function`` entry point."""
    module_path = "/".join(target.split(":")[0].strip().split("."))
    for prefix in ("", "src/"):
        for candidate in (f"{prefix}{module_path}.py", f"{prefix}{module_path}/__init__.py"):
            if repo.has(candidate):
                return candidate
    return None


def _python_pytest_configured(repo: _Repo, pyproject: dict[str, Any]) -> bool:
    if "pytest" in pyproject.get("tool", {}) or repo.has("pytest.ini") or repo.has("conftest.py"):
        return True
    if "[tool:pytest]" in repo.text("setup.cfg") or "[pytest]" in repo.text("tox.ini"):
        return True
    return any(
        PurePosixPath(path).parts[0] in ("tests", "test") and is_test_file(path) and path.endswith(".py")
        for path in repo.sizes
    )


def _python_ecosystem(repo: _Repo) -> _Ecosystem | None:
    manifests = ("pyproject.toml", "setup.py", "setup.cfg", "Pipfile", "requirements.txt")
    has_python = any(path.endswith(".py") for path in repo.sizes)
    if not has_python and not any(repo.has(name) for name in manifests):
        return None
    pyproject = repo.toml("pyproject.toml")
    tool = pyproject.get("tool", {})
    eco = _Ecosystem(languages=("Python",))
    if repo.has("uv.lock") or "uv" in tool:
        eco.package_manager = "uv"
    elif repo.has("poetry.lock") or "poetry" in tool:
        eco.package_manager = "poetry"
    elif repo.has("pdm.lock") or "pdm" in tool:
        eco.package_manager = "pdm"
    elif repo.has("hatch.toml") or "envs" in tool.get("hatch", {}):
        eco.package_manager = "hatch"
    elif repo.has("Pipfile"):
        eco.package_manager = "pipenv"
    elif any(repo.has(name) for name in manifests):
        eco.package_manager = "pip"
    eco.frameworks = _python_dependency_names(repo, pyproject) & PYTHON_FRAMEWORKS
    if "pytest" in eco.frameworks or _python_pytest_configured(repo, pyproject):
        eco.test_command = "python -m pytest"
        eco.frameworks.add("pytest")
    scripts = {**pyproject.get("project", {}).get("scripts", {}), **tool.get("poetry", {}).get("scripts", {})}
    for script, target in scripts.items():
        eco.entry_points.add(script)
        module_file = _python_module_file(repo, str(target))
        if module_file:
            eco.entry_files.add(module_file)
    for path in repo.sizes:
        if PurePosixPath(path).name == "__main__.py" or path == "manage.py":
            eco.add_entry_file(path)
    return eco


def _javascript_ecosystem(repo: _Repo) -> _Ecosystem | None:
    if not repo.has("package.json"):
        return None
    package = repo.json("package.json")
    eco = _Ecosystem(languages=("JavaScript", "TypeScript"))
    locks = (("pnpm-lock.yaml", "pnpm"), ("yarn.lock", "yarn"), ("bun.lockb", "bun"), ("bun.lock", "bun"))
    eco.package_manager = next((manager for lock, manager in locks if repo.has(lock)), "npm")
    scripts = package.get("scripts") or {}
    test_script = scripts.get("test") if isinstance(scripts, dict) else None
    if isinstance(test_script, str) and test_script.strip() and test_script != NPM_DEFAULT_TEST_SCRIPT:
        eco.test_command = f"{eco.package_manager} test"
    for table in ("dependencies", "devDependencies", "peerDependencies"):
        dependencies = package.get(table) or {}
        if isinstance(dependencies, dict):
            eco.frameworks |= {JAVASCRIPT_FRAMEWORKS[n] for n in dependencies if n in JAVASCRIPT_FRAMEWORKS}
    main = posixpath.normpath(str(package.get("main", "")))
    if repo.has(main):
        eco.add_entry_file(main)
    commands = package.get("bin")
    if isinstance(commands, str):  # a single command named after the package
        commands = {package.get("name") or "main": commands}
    for command, target in commands.items() if isinstance(commands, dict) else ():
        eco.entry_points.add(str(command))
        if repo.has(posixpath.normpath(str(target))):
            eco.entry_files.add(posixpath.normpath(str(target)))
    return eco


def _rust_ecosystem(repo: _Repo) -> _Ecosystem | None:
    if not repo.has("Cargo.toml"):
        return None
    cargo = repo.toml("Cargo.toml")
    names = set(cargo.get("dependencies", {})) | set(cargo.get("dev-dependencies", {}))
    eco = _Ecosystem(("Rust",), "cargo", "cargo test", frameworks=names & RUST_FRAMEWORKS)
    for path in repo.sizes:
        if path == "src/main.rs" or re.fullmatch(r"src/bin/[^/]+\.rs", path):
            eco.add_entry_file(path)
    return eco


def _go_ecosystem(repo: _Repo) -> _Ecosystem | None:
    if not repo.has("go.mod"):
        return None
    eco = _Ecosystem(("Go",), "go modules", "go test ./...")
    go_mod = repo.text("go.mod")
    eco.frameworks = {label for module, label in GO_FRAMEWORKS.items() if module in go_mod}
    for path in repo.sizes:
        if path == "main.go" or re.fullmatch(r"cmd/[^/]+/main\.go", path):
            eco.add_entry_file(path)
    return eco


def _jvm_ecosystem(repo: _Repo) -> _Ecosystem | None:
    if repo.has("pom.xml"):
        command = "./mvnw test" if repo.has("mvnw") else "mvn test"
        eco = _Ecosystem(("Java", "Kotlin"), "maven", command)
        build_text = repo.text("pom.xml")
    elif any(repo.has(name) for name in ("build.gradle", "build.gradle.kts", "settings.gradle")):
        command = "./gradlew test" if repo.has("gradlew") else "gradle test"
        eco = _Ecosystem(("Java", "Kotlin"), "gradle", command)
        build_text = repo.text("build.gradle") + repo.text("build.gradle.kts")
    else:
        return None
    if "spring-boot" in build_text:
        eco.frameworks.add("spring-boot")
    return eco


def _ruby_ecosystem(repo: _Repo) -> _Ecosystem | None:
    if not repo.has("Gemfile"):
        return None
    gems = set(re.findall(r"""^\s*gem\s+['"]([^'"]+)['"]""", repo.text("Gemfile"), re.MULTILINE))
    eco = _Ecosystem(("Ruby",), "bundler", frameworks=gems & RUBY_FRAMEWORKS)
    if "rspec" in gems or any(path.startswith("spec/") for path in repo.sizes):
        eco.test_command = "bundle exec rspec"
    elif repo.has("Rakefile"):
        eco.test_command = "bundle exec rake test"
    return eco


def _ecosystems(repo: _Repo) -> list[_Ecosystem]:
    detectors = (_python_ecosystem, _javascript_ecosystem, _rust_ecosystem, _go_ecosystem,
                 _jvm_ecosystem, _ruby_ecosystem)
    return [eco for detect in detectors if (eco := detect(repo)) is not None]


def _count_languages(paths: list[str]) -> dict[str, int]:
    suffixes = (PurePosixPath(path).suffix.lower() for path in paths)
    counts = Counter(CODE_LANGUAGES[suffix] for suffix in suffixes if suffix in CODE_LANGUAGES)
    return dict(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def _total_lines(repo: _Repo) -> int:
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
    root = Path(root).resolve()
    repo = _Repo(root, list_visible_files(root))
    paths = list(repo.sizes)
    languages = _count_languages(paths)
    primary = next(iter(languages), None)
    ecosystems = _ecosystems(repo)
    chosen = next((eco for eco in ecosystems if primary in eco.languages), None)
    chosen = chosen or (ecosystems[0] if ecosystems else None)
    test_file_count = sum(1 for path in paths if is_test_file(path))
    return ProjectFacts(
        name=root.name,
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


def _key_file_paths(repo: _Repo) -> list[str]:
    readmes = [path for path in repo.sizes if "/" not in path and path.lower().startswith("readme")]
    manifests = [name for name in KEY_MANIFESTS if repo.has(name)]
    entry_files = sorted(set().union(*(eco.entry_files for eco in _ecosystems(repo))))
    chosen = list(dict.fromkeys(readmes + manifests + entry_files))[:MAX_KEY_FILES]
    return sorted(chosen)


def snapshot_repository(root: Path, max_files: int = 300, max_key_file_bytes: int = 4000) -> RepoSnapshot:
    """A bounded listing and the heads of key files, for an agent on a machine without the repo."""
    root = Path(root).resolve()
    repo = _Repo(root, list_visible_files(root))
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
