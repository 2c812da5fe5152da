"""The sandbox's environment: the allowlist, ``build.env_passthrough``, and telling a user what a
failed command did not get. Real processes; the CLI as a user runs it on a real src/ layout project."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from aigentflow.sandbox import Sandbox
from tests.conftest import aigentflow, cli_env

PYTEST = f"{sys.executable} -m pytest -q -p no:cacheprovider"


def names_in(env_output: str) -> set[str]:
    return {line.split("=", 1)[0] for line in env_output.splitlines()}


def test_passthrough_names_and_globs_reach_the_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PYTHONPATH", "src")
    monkeypatch.setenv("MYAPP_MODE", "fast")
    monkeypatch.setenv("MYAPP_LEVEL", "3")
    monkeypatch.setenv("OTHER_SETTING", "x")
    monkeypatch.setenv("LD_PRELOAD", "/nowhere.so")
    result = Sandbox(tmp_path, env_passthrough=["PYTHONPATH", "MYAPP_*", "L?_*"]).run(["env"])
    lines = result.stdout.splitlines()
    assert {"PYTHONPATH=src", "MYAPP_MODE=fast", "MYAPP_LEVEL=3"} <= set(lines)
    assert "OTHER_SETTING" not in names_in(result.stdout)
    assert "LD_PRELOAD" not in names_in(result.stdout), "a glob never selects a variable that changes what code runs"
    assert "OTHER_SETTING" in result.env_withheld and "PYTHONPATH" not in result.env_withheld


def test_secrets_are_refused_even_when_passed_through(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    token, key = "t" + uuid.uuid4().hex, "sk-" + uuid.uuid4().hex
    monkeypatch.setenv("MYAPP_TOKEN", token)  # selected by the glob, refused by its name
    monkeypatch.setenv("MYAPP_ENDPOINT", key)  # a harmless name, refused by its value
    monkeypatch.setenv("MYAPP_DB", "postgres://user:hunter2hunter2@db/app")
    monkeypatch.setenv("MYAPP_MODE", "fast")
    result = Sandbox(tmp_path, env_passthrough=["MYAPP_*"]).run(["env"])
    record = json.dumps(result.to_record())
    assert "MYAPP_MODE=fast" in result.stdout.splitlines()
    assert {"MYAPP_TOKEN", "MYAPP_ENDPOINT", "MYAPP_DB"}.isdisjoint(names_in(result.stdout))
    assert result.env_refused == ["MYAPP_DB", "MYAPP_ENDPOINT", "MYAPP_TOKEN"]
    for value in (token, key, "hunter2"):
        assert value not in record and value not in result.env_note()


def test_a_failed_command_says_what_it_was_not_given(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    canary = "value-" + uuid.uuid4().hex
    monkeypatch.setenv("PYTHONPATH", canary)
    monkeypatch.setenv("BUILD_FLAVOUR", canary)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-" + uuid.uuid4().hex)
    monkeypatch.setenv("SSH_AUTH_SOCK", "/tmp/agent.sock")
    monkeypatch.setenv("SHLVL", "2")
    result = Sandbox(tmp_path).run('test -n "$PYTHONPATH"')
    assert not result.ok
    assert result.env_withheld[0] == "PYTHONPATH", "build-relevant variables are named first"
    assert "BUILD_FLAVOUR" in result.env_withheld
    assert {"OPENAI_API_KEY", "SSH_AUTH_SOCK", "SHLVL", "PATH", "HOME"}.isdisjoint(result.env_withheld)
    assert result.env_note().startswith("not passed from your environment: PYTHONPATH, ")
    assert canary not in json.dumps(result.to_record()) and canary not in result.env_note()


def test_a_build_tasks_test_record_gets_the_passthrough_and_names_what_it_lacked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What a build task records as its tests (the step output `status` and the fixer read)."""
    from aigentflow.checks.build import limits_from_settings, run_in_sandbox
    from aigentflow.config.settings import BuildSettings

    monkeypatch.setenv("PYTHONPATH", "src")
    monkeypatch.setenv("BUILD_FLAVOUR", "fast")
    command = 'test "$PYTHONPATH" = src && test -n "$BUILD_FLAVOUR"'
    plain = run_in_sandbox(tmp_path, command, limits_from_settings(BuildSettings()))
    assert plain["ok"] is False and plain["env_withheld"][0] == "PYTHONPATH"
    assert "BUILD_FLAVOUR" in plain["env_withheld"]
    settings = BuildSettings(env_passthrough=["PYTHONPATH", "BUILD_*"])
    passed = run_in_sandbox(tmp_path, command, limits_from_settings(settings))
    assert passed["ok"] is True, passed["summary"]
    assert {"PYTHONPATH", "BUILD_FLAVOUR"}.isdisjoint(passed["env_withheld"])


# -- the CLI on a src/ layout project ---------------------------------------------------------------


@pytest.fixture
def src_layout(tmp_path: Path, user_config: Path) -> Path:
    """A project whose tests import its package from src/ (not installed): they need PYTHONPATH=src."""
    repo = tmp_path / "calc"
    (repo / "src" / "calc").mkdir(parents=True)
    (repo / "tests").mkdir()
    (repo / "pyproject.toml").write_text('[project]\nname = "calc"\nversion = "0.1.0"\n\n'
                                         '[tool.pytest.ini_options]\ntestpaths = ["tests"]\n')
    (repo / "src" / "calc" / "__init__.py").write_text("def add(a, b):\n    return a + b\n")
    (repo / "tests" / "test_calc.py").write_text(
        "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n")
    git = ["git", "-c", "user.name=u", "-c", "user.email=u@x", "-c", "core.hooksPath=/dev/null"]
    subprocess.run([*git, "init", "-q", "-b", "main"], cwd=repo, check=True)
    subprocess.run([*git, "add", "-A"], cwd=repo, check=True)
    subprocess.run([*git, "commit", "-qm", "calc"], cwd=repo, check=True)
    assert aigentflow("init", cwd=repo).returncode == 0
    assert aigentflow("config", "set", "build.test_command", PYTEST, cwd=repo).returncode == 0
    return repo


def exported(**extra: str) -> dict[str, str]:
    """The user's shell after `export PYTHONPATH=src` (aigentflow's own import path kept after it)."""
    inherited = os.environ.get("PYTHONPATH", "")
    return cli_env(PYTHONPATH="src" + (os.pathsep + inherited if inherited else ""), **extra)


def test_ci_run_names_the_withheld_pythonpath_and_passes_once_it_is_passed(src_layout: Path) -> None:
    canary = "flavour-" + uuid.uuid4().hex
    env = exported(BUILD_FLAVOUR=canary)
    direct = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=src_layout,
                            env=env, capture_output=True, text=True, check=False)
    assert direct.returncode == 0, "the tests pass when run directly with PYTHONPATH=src"

    failed = aigentflow("ci", "run", cwd=src_layout, env=env)
    assert failed.returncode == 1 and "No module named 'calc'" in failed.stdout + failed.stderr
    assert "Not passed from your environment (sandboxed commands get an allowlist): PYTHONPATH, " in failed.stderr
    assert "BUILD_FLAVOUR" in failed.stderr
    assert "`aigentflow config set build.env_passthrough '[\"PYTHONPATH\"" in failed.stderr
    record = json.loads(aigentflow("ci", "run", "--json", cwd=src_layout, env=env).stdout)
    assert record["passed"] is False and record["env_withheld"][0] == "PYTHONPATH"
    assert canary not in failed.stdout + failed.stderr + json.dumps(record), "names only, never a value"

    assert aigentflow("config", "set", "build.env_passthrough", '["PYTHONPATH"]', cwd=src_layout).returncode == 0
    passed = aigentflow("ci", "run", cwd=src_layout, env=env)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert "CI gate passed" in passed.stdout and "Not passed" not in passed.stdout + passed.stderr


def test_a_secret_looking_name_in_env_passthrough_is_refused(src_layout: Path) -> None:
    config = src_layout / ".aigentflow" / "config.toml"
    before = config.read_text()
    refused = aigentflow("config", "set", "build.env_passthrough", '["PYTHONPATH", "DEPLOY_TOKEN"]', cwd=src_layout)
    assert refused.returncode == 2
    assert "'DEPLOY_TOKEN' looks like the name of a secret" in refused.stderr and "remove it" in refused.stderr
    assert config.read_text() == before, "nothing written"
    everything = aigentflow("config", "set", "build.env_passthrough", "*", cwd=src_layout)
    assert everything.returncode == 2 and "would pass every variable" in everything.stderr

    config.write_text(before.replace("[build]\n", '[build]\nenv_passthrough = ["AWS_SECRET_ACCESS_KEY"]\n'))
    hand_edited = aigentflow("ci", "run", cwd=src_layout, env=exported())
    assert hand_edited.returncode == 2 and "AWS_SECRET_ACCESS_KEY" in hand_edited.stderr
    assert "project file" in hand_edited.stderr, "the message names where the bad value is"


def test_a_passed_through_variable_whose_value_looks_secret_is_withheld_by_name(src_layout: Path) -> None:
    secret = "postgres://app:" + uuid.uuid4().hex + "@db/app"
    (src_layout / "tests" / "test_calc.py").write_text(
        "import os\n\n\ndef test_database_url():\n    assert os.environ.get('DATABASE_URL')\n")
    setting = ("config", "set", "build.env_passthrough", "PYTHONPATH,DATABASE_URL")
    assert aigentflow(*setting, cwd=src_layout).returncode == 0
    failed = aigentflow("ci", "run", cwd=src_layout, env=exported(DATABASE_URL=secret))
    assert failed.returncode == 1
    assert "Refused because the name or value looks secret (never passed): DATABASE_URL." in failed.stderr
    assert secret.split(":")[2] not in failed.stdout + failed.stderr


def test_status_names_the_variables_a_failed_tasks_tests_ran_without() -> None:
    from aigentflow.cli.status_cmd import withheld_lines

    build = {"step": "build", "output": {"tasks": {
        "T1": {"status": "failed", "tests": {"env_withheld": ["PYTHONPATH", "MYAPP_HOME"]}},
        "T2": {"status": "passed", "tests": {"env_withheld": ["PYTHONPATH"]}},
    }}}
    [line] = withheld_lines({"steps": [build]})
    assert line.startswith("T1:") and "PYTHONPATH, MYAPP_HOME" in line and "build.env_passthrough" in line
