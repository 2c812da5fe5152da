"""The README's configuration section says what a user then sees: the default model as `config get`
prints it, the defaults as `config list` shows them, and commands that choose a real model."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

from tests.conftest import aigentflow, cli_env, commit_files

README = Path(__file__).resolve().parents[1] / "README.md"
EXAMPLES = {"git.integration_branch", "flags.agents.architect"}
"""Keys the example sets to something else than the default, and says so (recorded by init, an override)."""


def configuration_section() -> str:
    return README.read_text(encoding="utf-8").split("## Configuration\n", 1)[1].split("\n## ", 1)[0]


def test_the_example_shows_the_defaults_config_list_shows(tmp_path: Path, user_config: Path) -> None:
    repo = commit_files(tmp_path / "project", {"README.md": "words\n"})
    listed = aigentflow("config", "list", "--json", cwd=repo)
    assert listed.returncode == 0, listed.stderr
    defaults = {entry["key"]: entry["value"] for entry in json.loads(listed.stdout)
                if entry["source"] == "default" or entry["source"].startswith("preset ")}
    example = tomllib.loads(re.search(r"```toml\n(.*?)```", configuration_section(), re.DOTALL).group(1))
    shown = {f"{section}.{key}": value for section, table in example.items() if isinstance(table, dict)
             for key, value in table.items()}
    assert set(shown) - set(defaults) == set()
    assert {key for key, value in shown.items() if defaults[key] != value} == EXAMPLES
    printed = aigentflow("config", "get", "model.name", cwd=repo)
    assert printed.returncode == 0 and printed.stdout.strip() == shown["model.name"] == defaults["model.name"]
    assert f"`{printed.stdout.strip()}`" in configuration_section().split("```")[0]


def test_the_commands_that_choose_a_real_model_do(tmp_path: Path, user_config: Path) -> None:
    repo = commit_files(tmp_path / "project", {"README.md": "words\n"})
    assert aigentflow("init", cwd=repo).returncode == 0
    commands = re.findall(r"^aigentflow (config set .*?)\s+#", configuration_section(), re.MULTILINE)
    assert len(commands) == 2
    for command, layer in zip(commands, ("project file", "user file"), strict=True):
        words = command.split()
        changed = aigentflow(*words, cwd=repo)
        assert changed.returncode == 0, changed.stderr
        entry = next(e for e in json.loads(aigentflow("config", "list", "--json", cwd=repo).stdout)
                     if e["key"] == "model.name")
        assert entry["value"] == words[-1] and entry["source"].startswith(layer)
        assert aigentflow("config", "unset", *words[2:-1], cwd=repo).returncode == 0

    ran = re.search(r"^(aigentflow run .*?--model (\S+))\s+#", configuration_section(), re.MULTILINE)
    assert ran is not None
    without_key = {k: v for k, v in cli_env().items() if not k.startswith("OPENAI_")}
    unkeyed = aigentflow("run", "Add an export command", "--model", ran.group(2), cwd=repo, env=without_key)
    assert unkeyed.returncode == 2 and "OPENAI_API_KEY" in unkeyed.stderr  # the key the README exports first
