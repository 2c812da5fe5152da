"""What a sandboxed command can see and write: real bubblewrap, real git repositories and worktrees.

From inside the sandbox, each escape a model-written test command might try fails: reading a secret
planted in HOME, writing outside the worktree, reading another worktree or project, following a
symlink out, writing ``.git/hooks``. Projects' own tests still pass through it (src/ layout,
unittest, uv, npm), and where bubblewrap is missing commands are refused unless the user opts in.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from aigentflow.checks.build import limits_from_settings, run_in_sandbox
from aigentflow.config.settings import BuildSettings
from aigentflow.sandbox import Sandbox, SandboxRefused
from tests.conftest import aigentflow, cli_env

GIT = ["git", "-c", "user.name=u", "-c", "user.email=u@x", "-c", "core.hooksPath=/dev/null",
       "-c", "init.defaultBranch=main"]  # fmt: skip


def git(repo: Path, *args: str) -> str:
    done = subprocess.run([*GIT, *args], cwd=repo, check=True, capture_output=True, text=True)
    return done.stdout


def commit_all(repo: Path, message: str = "files") -> None:
    git(repo, "add", "-A")
    git(repo, "commit", "-qm", message)


@pytest.fixture(autouse=True)
def needs_bwrap() -> None:
    if Sandbox(Path("/")).isolation()["filesystem"] != "bwrap":
        pytest.fail("bubblewrap does not work on this machine: `apt-get install bubblewrap` (.ci/run does)")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user's home with secrets in the usual places; HOME points at it."""
    home = tmp_path / "home"
    for name, text in {".ssh/id_rsa": "PRIVATE-KEY", ".aws/credentials": "aws_secret_access_key=AWS-SECRET",
                       ".config/gh/hosts.yml": "oauth_token: GH-SECRET", ".gitconfig": "[user]\n\tname = GITCONFIG",
                       ".netrc": "machine x login u password NETRC-SECRET"}.items():
        (home / name).parent.mkdir(parents=True, exist_ok=True)
        (home / name).write_text(text + "\n")
    monkeypatch.setenv("HOME", str(home))
    return home


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A project next to another one, with its .aigentflow store and two task worktrees where
    aigentflow puts them (.aigentflow/worktrees/<task>)."""
    projects = tmp_path / "projects"
    (projects / "other").mkdir(parents=True)
    (projects / "other" / "secret.txt").write_text("OTHER-PROJECT\n")
    repo = projects / "app"
    repo.mkdir()
    (repo / "README.md").write_text("MAIN-TREE\n")
    git(repo, "init", "-q")
    commit_all(repo, "app")
    (repo / ".aigentflow").mkdir()
    (repo / ".aigentflow" / "aigentflow.db").write_text("STORE-CONTENT\n")
    for task in ("T1", "T2"):
        git(repo, "worktree", "add", "-q", "-b", task.lower(), str(repo / ".aigentflow" / "worktrees" / task))
        (repo / ".aigentflow" / "worktrees" / task / "mine.txt").write_text(f"{task}-WORK\n")
    return repo


def fails(sandbox: Sandbox, command: str) -> bool:
    """The command, run in the sandbox, fails."""
    return not sandbox.run(command).ok


def test_secrets_in_home_cannot_be_read(home: Path, tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    sandbox = Sandbox(root)
    for name in (".ssh/id_rsa", ".aws/credentials", ".config/gh/hosts.yml", ".gitconfig", ".netrc"):
        result = sandbox.run(["cat", str(home / name)])
        assert not result.ok and "No such file" in result.stderr, (name, result.stdout)
        assert "SECRET" not in result.stdout and "PRIVATE-KEY" not in result.stdout
    listing = sandbox.run(["ls", "-A", str(home)])
    assert listing.stdout.strip() == "", "the real home is an empty directory inside"
    private = sandbox.run('echo kept > "$HOME/.gitconfig" && cat "$HOME/.gitconfig" && git config --global -l')
    assert private.ok and private.stdout.startswith("kept\n"), "the command's own HOME is writable"
    assert (home / ".gitconfig").read_text().startswith("[user]"), "the user's file is untouched"
    assert sandbox.run("cat ~/.ssh/id_rsa").exit_code != 0


def test_tools_installed_in_home_still_run_without_exposing_its_secrets(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pyenv- or nvm-style tool on PATH (a shim calling its libexec) runs; secrets kept next to
    programs (cargo's credentials, ~/.local's keyrings) stay hidden."""
    files = {".mytool/shims/greet": '#!/bin/sh\nexec "$(dirname "$0")/../libexec/greet-impl"\n',
             ".mytool/libexec/greet-impl": "#!/bin/sh\necho hello from mytool\n",
             ".cargo/bin/cargo-x": "#!/bin/sh\necho cargo-x\n", ".cargo/credentials.toml": "token = 'CARGO-SECRET'\n",
             ".local/bin/pipx-tool": "#!/bin/sh\necho pipx-tool\n",
             ".local/share/keyrings/login.keyring": "KEYRING-SECRET\n"}  # fmt: skip
    for name, text in files.items():
        (home / name).parent.mkdir(parents=True, exist_ok=True)
        (home / name).write_text(text)
        (home / name).chmod(0o755)
    bins = [home / ".mytool" / "shims", home / ".cargo" / "bin", home / ".local" / "bin"]
    monkeypatch.setenv("PATH", os.pathsep.join([*map(str, bins), os.environ["PATH"]]))
    root = tmp_path / "root"
    root.mkdir()
    ran = Sandbox(root).run("greet && cargo-x && pipx-tool")
    assert ran.ok and ran.stdout == "hello from mytool\ncargo-x\npipx-tool\n", ran.stderr
    for secret in (".cargo/credentials.toml", ".local/share/keyrings/login.keyring", ".ssh/id_rsa"):
        assert fails(Sandbox(root), f"cat {home / secret}"), secret


def test_nothing_outside_the_worktree_can_be_written(repo: Path) -> None:
    sandbox = Sandbox(repo)
    marker = uuid.uuid4().hex
    for target in (repo.parent / marker, repo.parent / "other" / marker, Path("/usr") / marker,
                   Path("/tmp") / marker, Path("/var/tmp") / marker):  # fmt: skip
        result = sandbox.run(["sh", "-c", f'echo x > "{target}"'])
        assert not result.ok and any(why in result.stderr for why in ("Read-only", "nonexistent")), target
        assert not target.exists(), f"{target} was written on the host"
    assert fails(sandbox, f"mkdir ../{marker}") and not (repo.parent / marker).exists()
    assert fails(sandbox, f"mv README.md ../{marker}") and (repo / "README.md").is_file()
    wrote = sandbox.run(f'echo inside > new.txt && echo t > "$TMPDIR/{marker}" && cat "$TMPDIR/{marker}"')
    assert wrote.ok and wrote.stdout == "t\n", wrote.stderr
    assert (repo / "new.txt").read_text() == "inside\n", "the worktree is writable, and what it wrote stays"


def test_other_worktrees_projects_and_the_store_are_not_visible(repo: Path) -> None:
    t1, t2 = repo / ".aigentflow" / "worktrees" / "T1", repo / ".aigentflow" / "worktrees" / "T2"
    sandbox = Sandbox(t1)
    for secret in (t2 / "mine.txt", repo / "README.md", repo / ".aigentflow" / "aigentflow.db",
                   repo.parent / "other" / "secret.txt"):  # fmt: skip
        result = sandbox.run(["cat", str(secret)])
        assert not result.ok and result.stdout == "", secret
    assert sandbox.run("cat mine.txt").stdout == "T1-WORK\n"
    in_git = sandbox.run("git log --oneline -1 && git status --porcelain")
    assert in_git.ok and "app" in in_git.stdout and "?? mine.txt" in in_git.stdout, in_git.stderr
    main = Sandbox(repo).run(["cat", str(repo / ".aigentflow" / "aigentflow.db"), str(t1 / "mine.txt")])
    assert not main.ok and "STORE-CONTENT" not in main.stdout and "T1-WORK" not in main.stdout, \
        "in the main worktree too, its own .aigentflow store and the task worktrees inside it are hidden"


def test_symlinks_out_of_the_worktree_lead_nowhere(repo: Path, home: Path, tmp_path: Path) -> None:
    writable_outside = tmp_path / "outside"
    writable_outside.mkdir()
    (repo / "key").symlink_to(home / ".ssh" / "id_rsa")
    (repo / "sibling").symlink_to(repo.parent / "other")
    (repo / "out").symlink_to(writable_outside)
    sandbox = Sandbox(repo)
    assert fails(sandbox, "cat key") and fails(sandbox, "cat sibling/secret.txt")
    assert "PRIVATE-KEY" not in sandbox.run("cat key 2>&1").stdout
    assert fails(sandbox, "echo x > out/escaped") and not (writable_outside / "escaped").exists()
    assert fails(sandbox, "ln -s / root && echo x > root/tmp/escaped")


def test_git_metadata_and_hooks_are_read_only(repo: Path) -> None:
    t1 = repo / ".aigentflow" / "worktrees" / "T1"
    hook = "#!/bin/sh\necho pwned\n"
    main = Sandbox(repo)
    assert fails(main, f"printf '{hook}' > .git/hooks/pre-commit")
    assert fails(main, "echo '[core]' >> .git/config") and fails(main, "rm -rf .git")
    linked = Sandbox(t1)
    assert fails(linked, f"printf '{hook}' > \"$(git rev-parse --git-common-dir)/hooks/pre-commit\"")
    assert fails(linked, "echo 'gitdir: /elsewhere' > .git") and fails(linked, "git commit -qm x --allow-empty")
    assert not (repo / ".git" / "hooks" / "pre-commit").exists()
    assert (t1 / ".git").read_text().startswith("gitdir: ")
    assert git(t1, "status", "--porcelain").strip() == "?? mine.txt", "the worktree still works from outside"


def test_without_bubblewrap_commands_are_refused_unless_allowed(tmp_path: Path) -> None:
    with pytest.raises(SandboxRefused, match=r"build\.sandbox_allow_unconfined") as refused:
        Sandbox(tmp_path, disable=["filesystem"]).run("true")
    assert "bubblewrap" in str(refused.value) and "apt-get install bubblewrap" in str(refused.value)
    allowed = Sandbox(tmp_path, disable=["filesystem"], allow_unconfined=True).run("true")
    assert allowed.ok and allowed.isolation["filesystem"] == "unconfined"
    assert Sandbox(tmp_path).run("true").isolation["filesystem"] == "bwrap"


# -- projects' own tests, through the sandbox as a build task runs them ------------------------------


def project(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "project"
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    git(root, "init", "-q")
    commit_all(root)
    return root


def build_tests(root: Path, command: str, **settings: object) -> dict[str, object]:
    record = run_in_sandbox(root, command, limits_from_settings(BuildSettings(**settings)))  # type: ignore[arg-type]
    assert record["isolation"]["filesystem"] == "bwrap"  # type: ignore[index]
    assert record["ok"], f"{record['summary']}\n{record['stdout']}\n{record['stderr']}"
    return record


def test_a_src_layout_project_passes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = project(tmp_path, {
        "pyproject.toml": '[project]\nname = "calc"\nversion = "0.1.0"\n',
        "src/calc/__init__.py": "def add(a, b):\n    return a + b\n",
        "tests/test_calc.py": "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n\n\n"
                              "def test_more():\n    assert add(1, 1) == 2\n",
    })  # fmt: skip
    monkeypatch.setenv("PYTHONPATH", "src")
    record = build_tests(root, f"{sys.executable} -m pytest -q tests", env_passthrough=["PYTHONPATH"])
    assert record["results"]["source"] == "junit" and record["results"]["passed"] == 2  # type: ignore[index]


def test_coverage_is_measured_through_the_sandbox(tmp_path: Path) -> None:
    """coverage.py writes its data and report outside the worktree, in a directory the sandbox opens."""
    from aigentflow.checks.coverage import measure

    root = project(tmp_path, {"calc.py": "def add(a, b):\n    return a + b\n",
                              "test_calc.py": "from calc import add\n\n\ndef test_add():\n    assert add(1, 2) == 3\n"})
    diff = ("diff --git a/calc.py b/calc.py\n--- a/calc.py\n+++ b/calc.py\n"
            "@@ -0,0 +1,2 @@\n+def add(a, b):\n+    return a + b\n")
    summary = measure(root, f"{sys.executable} -m pytest -q", "", limits_from_settings(BuildSettings()), diff)
    assert summary["measured"] and summary["tests_ok"], summary
    assert summary["changed_percent"] == 100.0


def test_a_unittest_project_passes(tmp_path: Path) -> None:
    root = project(tmp_path, {
        "shapes.py": "def area(w, h):\n    return w * h\n",
        "tests/__init__.py": "",
        "tests/test_shapes.py": "import tempfile, unittest\nfrom shapes import area\n\n\n"
                                "class T(unittest.TestCase):\n    def test_area(self):\n"
                                "        with tempfile.NamedTemporaryFile() as f:\n            f.write(b'x')\n"
                                "        self.assertEqual(area(2, 3), 6)\n",
    })  # fmt: skip
    record = build_tests(root, f"{sys.executable} -m unittest discover -v")
    assert "Ran 1 test" in str(record["stderr"]) and "OK" in str(record["stderr"])


def test_a_uv_project_passes(tmp_path: Path) -> None:
    uv = shutil.which("uv") or shutil.which("uv", path=str(Path(sys.executable).parent))
    if uv is None:
        pytest.fail("uv is not installed: `pip install uv` (the test extra has it)")
    root = project(tmp_path, {
        "pyproject.toml": '[project]\nname = "greet"\nversion = "0.1.0"\nrequires-python = ">=3.9"\n'
                          'dependencies = []\n\n[dependency-groups]\ndev = ["pytest>=8"]\n\n'
                          '[tool.uv]\npackage = false\n\n[tool.pytest.ini_options]\npythonpath = ["."]\n',
        "greet.py": "def hello(name):\n    return f'hello {name}'\n",
        "tests/test_greet.py": "from greet import hello\n\n\ndef test_hello():\n    assert hello('x') == 'hello x'\n",
    })  # fmt: skip
    env = {**os.environ, "UV_PYTHON": sys.executable, "UV_CACHE_DIR": str(tmp_path / "uv-cache")}
    synced = subprocess.run([uv, "sync", "-q"], cwd=root, env=env, capture_output=True, text=True, check=False)
    if synced.returncode != 0:
        pytest.skip(f"uv could not install pytest from PyPI here: {synced.stderr[-300:]}")
    commit_all(root, "lock")
    record = build_tests(root, f"{uv} run --frozen --offline --no-python-downloads pytest -q", network=False)
    assert record["results"]["passed"] == 1  # type: ignore[index]


def test_an_npm_project_passes(tmp_path: Path) -> None:
    if shutil.which("npm") is None:
        pytest.fail("node and npm are not installed")
    root = project(tmp_path, {
        "package.json": json.dumps({"name": "sum", "version": "1.0.0", "scripts": {"test": "node --test"}}),
        "index.js": "module.exports = (a, b) => a + b;\n",
        "test/sum.test.js": "const test = require('node:test');\nconst assert = require('node:assert');\n"
                            "const sum = require('../index.js');\n"
                            "test('adds', () => assert.strictEqual(sum(1, 2), 3));\n",
    })  # fmt: skip
    record = build_tests(root, "npm test")
    assert "pass 1" in str(record["stdout"]) or (record["results"] or {}).get("passed") == 1  # type: ignore[union-attr]


# -- the CLI on a machine without bubblewrap ---------------------------------------------------------


def path_without_bwrap(tmp_path: Path) -> str:
    """A PATH with every program this machine has except bubblewrap (a machine without it)."""
    bin_dir = tmp_path / "bin-without-bwrap"
    bin_dir.mkdir()
    for entry in [str(Path(sys.executable).parent), *os.environ["PATH"].split(os.pathsep)]:
        for program in Path(entry).glob("*") if Path(entry).is_dir() else ():
            if program.name != "bwrap" and not (bin_dir / program.name).exists() and os.access(program, os.X_OK):
                (bin_dir / program.name).symlink_to(program)
    return str(bin_dir)


def test_ci_run_without_bubblewrap_exits_2_until_the_user_opts_in(tmp_path: Path, user_config: Path) -> None:
    root = project(tmp_path, {"check.py": "print('checked')\n"})
    assert aigentflow("init", cwd=root).returncode == 0
    assert aigentflow("config", "set", "build.test_command", f"{sys.executable} check.py", cwd=root).returncode == 0
    env = cli_env(PATH=path_without_bwrap(tmp_path))
    refused = aigentflow("ci", "run", cwd=root, env=env)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "bubblewrap (`bwrap`) is not installed" in refused.stderr
    assert "aigentflow config set build.sandbox_allow_unconfined true" in refused.stderr.replace("\n", " ")

    nested = aigentflow("config", "set", "build.sandbox.allow_unconfined", "true", cwd=root)
    assert nested.returncode == 2 and "build.sandbox_allow_unconfined" in nested.stderr, "the flat key is suggested"
    assert aigentflow("config", "set", "build.sandbox_allow_unconfined", "true", cwd=root).returncode == 0
    allowed = aigentflow("ci", "run", cwd=root, env=env)
    assert allowed.returncode == 0 and "CI gate passed" in allowed.stdout, allowed.stderr
    assert "ran unconfined (build.sandbox_allow_unconfined = true)" in allowed.stderr
    record = json.loads(aigentflow("ci", "run", "--json", cwd=root, env=env).stdout)
    assert record["isolation"]["filesystem"] == "unconfined"
    confined = json.loads(aigentflow("ci", "run", "--json", cwd=root).stdout)
    assert confined["isolation"]["filesystem"] == "bwrap", "with bubblewrap present it is still used"


def test_a_run_that_builds_is_refused_before_it_starts(sample_repo: Path, tmp_path: Path) -> None:
    env = cli_env(PATH=path_without_bwrap(tmp_path))
    refused = aigentflow("run", "Add a greeting function", "-c", "flags.preset=v1", cwd=sample_repo, env=env)
    assert refused.returncode == 2 and "build.sandbox_allow_unconfined" in refused.stderr, refused.stderr
    assert "Run " not in refused.stdout


def test_status_says_when_commands_ran_unconfined(tmp_path: Path) -> None:
    from aigentflow.cli.status_cmd import UNCONFINED_NOTICE, confinements

    unconfined = Sandbox(tmp_path, disable=["filesystem"], allow_unconfined=True).run("true").to_record()
    confined = Sandbox(tmp_path).run("true").to_record()
    build = {"step": "build", "output": {"tasks": {"T1": {"tests": unconfined}, "T2": {"tests": confined}}}}
    assert confinements([build, {"step": "plan", "output": None}]) == ["bwrap", "unconfined"]
    assert confinements([{"step": "build", "output": {"tasks": {"T2": {"tests": confined}}}}]) == ["bwrap"]
    assert "build.sandbox_allow_unconfined" in UNCONFINED_NOTICE
