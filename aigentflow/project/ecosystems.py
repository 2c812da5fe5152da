"""What a repository's manifests say: package manager, test command, frameworks, entry points, name.

One detector per language ecosystem, each reading the manifests it knows (pyproject.toml,
package.json, Cargo.toml, go.mod, pom.xml/build.gradle, Gemfile) through ``Repo``.
"""

from __future__ import annotations

import json
import posixpath
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from aigentflow.project.jstests import RUNNERS, is_js_test_file, javascript_tests
from aigentflow.project.testcommand import python_test_command

MAX_LINE_COUNTED_FILE_BYTES = 1_000_000

PYTHON_FRAMEWORKS = frozenset({
    "aiohttp", "alembic", "celery", "click", "django", "dspy", "fastapi", "flask", "gradio",
    "httpx", "hypothesis", "litellm", "numpy", "pandas", "pydantic", "pyramid", "pytest", "ray",
    "requests", "rich", "scikit-learn", "sqlalchemy", "starlette", "streamlit", "tensorflow",
    "textual", "torch", "tornado", "typer",
})
JAVASCRIPT_FRAMEWORKS = {
    "react": "react", "vue": "vue", "svelte": "svelte", "@angular/core": "angular",
    "express": "express", "next": "next", "nuxt": "nuxt", "@nestjs/core": "nestjs", "koa": "koa",
    "fastify": "fastify", "@playwright/test": "playwright", "cypress": "cypress", "electron": "electron",
    **{runner: runner for runner in RUNNERS},
}
RUST_FRAMEWORKS = frozenset({"actix-web", "axum", "clap", "rocket", "serde", "tokio", "warp"})
GO_FRAMEWORKS = {
    "github.com/gin-gonic/gin": "gin", "github.com/labstack/echo": "echo",
    "github.com/gofiber/fiber": "fiber", "github.com/spf13/cobra": "cobra",
    "github.com/gorilla/mux": "gorilla/mux",
}
RUBY_FRAMEWORKS = frozenset({"rails", "sinatra", "rspec", "minitest"})


@dataclass
class Ecosystem:
    """What one language ecosystem's manifests say about the project."""

    languages: tuple[str, ...]
    package_manager: str | None = None
    test_command: str | None = None
    test_source: str | None = None
    """Where the test command came from: "tox.ini [testenv] commands", "package.json scripts.test"..."""
    frameworks: set[str] = field(default_factory=set)
    entry_points: set[str] = field(default_factory=set)
    entry_files: set[str] = field(default_factory=set)

    def add_entry_file(self, path: str) -> None:
        self.entry_points.add(path)
        self.entry_files.add(path)


@dataclass
class Repo:
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
        return count_lines(self.root / path)

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


def count_lines(path: Path) -> int | None:
    """Lines of a text file; None for a binary file or one that cannot be read."""
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if b"\0" in data[:8192]:
        return None
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


def _requirement_name(requirement: str) -> str | None:
    """The normalised distribution name at the start of a PEP 508 requirement string."""
    match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    return re.sub(r"[-_.]+", "-", match.group(1)).lower() if match else None


def python_dependency_names(repo: Repo, pyproject: dict[str, Any]) -> set[str]:
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


def _python_module_file(repo: Repo, target: str) -> str | None:
    """The file defining ``package.module`` of a ``package.module:function`` entry point."""
    module_path = "/".join(target.split(":")[0].strip().split("."))
    for prefix in ("", "src/"):
        for candidate in (f"{prefix}{module_path}.py", f"{prefix}{module_path}/__init__.py"):
            if repo.has(candidate):
                return candidate
    return None


def _python_ecosystem(repo: Repo) -> Ecosystem | None:
    manifests = ("pyproject.toml", "setup.py", "setup.cfg", "Pipfile", "requirements.txt")
    has_python = any(path.endswith(".py") for path in repo.sizes)
    if not has_python and not any(repo.has(name) for name in manifests):
        return None
    pyproject = repo.toml("pyproject.toml")
    tool = pyproject.get("tool", {})
    eco = Ecosystem(languages=("Python",))
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
    dependencies = python_dependency_names(repo, pyproject)
    eco.frameworks = dependencies & PYTHON_FRAMEWORKS
    if found := python_test_command(repo, pyproject, dependencies):
        eco.test_command, eco.test_source = found
        if "pytest" in eco.test_command:
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


def _javascript_ecosystem(repo: Repo) -> Ecosystem | None:
    if not repo.has("package.json"):
        return None
    package = repo.json("package.json")
    eco = Ecosystem(languages=("JavaScript", "TypeScript"))
    locks = (("pnpm-lock.yaml", "pnpm"), ("yarn.lock", "yarn"), ("bun.lockb", "bun"), ("bun.lock", "bun"))
    eco.package_manager = next((manager for lock, manager in locks if repo.has(lock)), "npm")
    runner, eco.test_command, eco.test_source = javascript_tests(repo, package, eco.package_manager)
    if runner:
        eco.frameworks.add(runner)
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


def _rust_ecosystem(repo: Repo) -> Ecosystem | None:
    if not repo.has("Cargo.toml"):
        return None
    cargo = repo.toml("Cargo.toml")
    names = set(cargo.get("dependencies", {})) | set(cargo.get("dev-dependencies", {}))
    eco = Ecosystem(("Rust",), "cargo", "cargo test", "Cargo.toml", frameworks=names & RUST_FRAMEWORKS)
    for path in repo.sizes:
        if path == "src/main.rs" or re.fullmatch(r"src/bin/[^/]+\.rs", path):
            eco.add_entry_file(path)
    return eco


def _go_ecosystem(repo: Repo) -> Ecosystem | None:
    if not repo.has("go.mod"):
        return None
    eco = Ecosystem(("Go",), "go modules", "go test ./...", "go.mod")
    go_mod = repo.text("go.mod")
    eco.frameworks = {label for module, label in GO_FRAMEWORKS.items() if module in go_mod}
    for path in repo.sizes:
        if path == "main.go" or re.fullmatch(r"cmd/[^/]+/main\.go", path):
            eco.add_entry_file(path)
    return eco


def _jvm_ecosystem(repo: Repo) -> Ecosystem | None:
    if repo.has("pom.xml"):
        command = "./mvnw test" if repo.has("mvnw") else "mvn test"
        eco = Ecosystem(("Java", "Kotlin"), "maven", command, "pom.xml")
        build_text = repo.text("pom.xml")
    elif any(repo.has(name) for name in ("build.gradle", "build.gradle.kts", "settings.gradle")):
        command = "./gradlew test" if repo.has("gradlew") else "gradle test"
        eco = Ecosystem(("Java", "Kotlin"), "gradle", command, "build.gradle")
        build_text = repo.text("build.gradle") + repo.text("build.gradle.kts")
    else:
        return None
    if "spring-boot" in build_text:
        eco.frameworks.add("spring-boot")
    return eco


def _ruby_ecosystem(repo: Repo) -> Ecosystem | None:
    if not repo.has("Gemfile"):
        return None
    gems = set(re.findall(r"""^\s*gem\s+['"]([^'"]+)['"]""", repo.text("Gemfile"), re.MULTILINE))
    eco = Ecosystem(("Ruby",), "bundler", frameworks=gems & RUBY_FRAMEWORKS)
    if "rspec" in gems or any(path.startswith("spec/") for path in repo.sizes):
        eco.test_command, eco.test_source = "bundle exec rspec", "Gemfile (rspec)"
    elif repo.has("Rakefile"):
        eco.test_command, eco.test_source = "bundle exec rake test", "Rakefile"
    return eco


def detect_ecosystems(repo: Repo) -> list[Ecosystem]:
    detectors = (_python_ecosystem, _javascript_ecosystem, _rust_ecosystem, _go_ecosystem,
                 _jvm_ecosystem, _ruby_ecosystem)
    return [eco for detect in detectors if (eco := detect(repo)) is not None]



def declared_name(repo: Repo) -> str:
    """The name the project's manifest declares (pyproject, package.json, Cargo.toml), else its directory's."""
    pyproject = repo.toml("pyproject.toml")
    candidates = [
        pyproject.get("project", {}).get("name"),
        pyproject.get("tool", {}).get("poetry", {}).get("name"),
        repo.json("package.json").get("name"),
        repo.toml("Cargo.toml").get("package", {}).get("name"),
    ]
    return next((str(c) for c in candidates if isinstance(c, str) and c.strip()), repo.root.name)


def is_test_file(path: str) -> bool:
    """Whether a path looks like a test file in any of the ecosystems detected here."""
    pure = PurePosixPath(path)
    name, parts = pure.name, pure.parts[:-1]
    if pure.suffix == ".py":
        return name.startswith("test_") or name.endswith("_test.py")
    if pure.suffix in {".js", ".jsx", ".ts", ".tsx", ".mjs", ".cjs", ".mts", ".cts"}:
        return is_js_test_file(path)
    if pure.suffix == ".go":
        return name.endswith("_test.go")
    if pure.suffix == ".rs":
        return bool(parts) and parts[0] == "tests"
    if pure.suffix in {".java", ".kt"}:
        return pure.stem.endswith(("Test", "Tests")) or "src/test" in pure.parent.as_posix()
    if pure.suffix == ".rb":
        return name.endswith(("_spec.rb", "_test.rb"))
    return False
