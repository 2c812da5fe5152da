"""Layered configuration: precedence, sources, errors, editing files, and `aigentflow config`."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from aigentflow.cli.config_cmd import app
from aigentflow.config.flags import FLAG_NAMES
from aigentflow.config.loader import (
    describe_key,
    known_keys,
    load_config,
    set_value,
    unset_value,
    user_config_file,
)
from aigentflow.exceptions import ConfigError


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty user config dir, and no AIGENTFLOW_ variables from the real environment."""
    for name in list(os.environ):
        if name.upper().startswith("AIGENTFLOW_"):
            monkeypatch.delenv(name)
    config_home = tmp_path / "config-home"
    config_home.mkdir()
    monkeypatch.setenv("AIGENTFLOW_CONFIG_HOME", str(config_home))
    return config_home


@pytest.fixture
def env(home: Path) -> dict[str, str]:
    return {"AIGENTFLOW_CONFIG_HOME": str(home), "PATH": "/usr/bin"}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / ".aigentflow").mkdir(parents=True)
    return root


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def project_file(root: Path) -> Path:
    return root / ".aigentflow" / "config.toml"


def test_defaults_without_any_file(project: Path, env: dict[str, str]) -> None:
    config = load_config(project, env=env)
    assert config.settings.model.name == "replay/demo"
    assert config.settings.model.max_calls_per_run == 200
    assert config.settings.run.tenant == "default"
    assert config.settings.hooks == []
    assert config.sources["model.name"] == "default"
    assert config.get("flags.preset") == "mvp"


def test_each_layer_overrides_the_ones_below(project: Path, env: dict[str, str]) -> None:
    user = write(
        user_config_file(env),
        '[model]\nname = "user/m"\ntemperature = 0.1\n'
        '[run]\ntenant = "user-tenant"\n[trace]\nflush_every_spans = 10\n',
    )
    proj = write(
        project_file(project),
        '[model]\nname = "project/m"\ntemperature = 0.2\n[run]\ntenant = "project-tenant"\n',
    )
    env |= {"AIGENTFLOW_MODEL__NAME": "env/m", "AIGENTFLOW_MODEL__TEMPERATURE": "0.3"}
    config = load_config(project, overrides={"model.name": "cli/m"}, env=env)

    assert config.get("model.name") == "cli/m"
    assert config.sources["model.name"] == "command line"
    assert config.get("model.temperature") == 0.3
    assert config.sources["model.temperature"] == "env AIGENTFLOW_MODEL__TEMPERATURE"
    assert config.settings.run.tenant == "project-tenant"
    assert config.sources["run.tenant"] == f"project file {proj}"
    assert config.settings.trace.flush_every_spans == 10
    assert config.sources["trace.flush_every_spans"] == f"user file {user}"
    assert config.sources["run.max_request_chars"] == "default"


def test_flag_sources_and_items_cover_every_flag(project: Path, env: dict[str, str]) -> None:
    proj = write(
        project_file(project),
        '[flags]\npreset = "v1"\n"agents.analyst" = false\n\n'
        "[flags.features]\ntddWorkflow = false\n",
    )
    env["AIGENTFLOW_FLAGS__AGENTS__PROJECTMANAGER"] = "false"
    config = load_config(project, env=env)

    assert config.flags["agents.analyst"] is False
    assert config.flags["features.tddWorkflow"] is False
    assert config.flags["agents.projectManager"] is False
    assert config.flags["agents.tester"] is True
    items = {key: (value, source) for key, value, source in config.items()}
    assert set(items) == set(known_keys())
    assert {key for key in items if key.startswith("flags.")} == {"flags.preset"} | {
        f"flags.{name}" for name in FLAG_NAMES
    }
    assert items["flags.preset"] == ("v1", f"project file {proj}")
    assert items["flags.agents.analyst"] == (False, f"project file {proj}")
    assert items["flags.agents.projectManager"] == (
        False,
        "env AIGENTFLOW_FLAGS__AGENTS__PROJECTMANAGER",
    )
    assert items["flags.agents.tester"] == (True, "preset v1")
    assert items["flags.evolution.maxGeneratedAgents"] == (5, "preset v1")


def test_strings_from_env_and_command_line_are_converted(
    project: Path, env: dict[str, str]
) -> None:
    env |= {
        "aigentflow_run__include_dashboard": "true",
        "AIGENTFLOW_MODEL__MAX_CALLS_PER_RUN": "7",
        "AIGENTFLOW_TRACE__REDACT_PATTERNS": "secret-\\w+, token=\\S+",
        "AIGENTFLOW_SOMETHING_ELSE": "not a config key, ignored",
    }
    overrides = {"model.replay_lenient": "1", "flags.evolution.maxGeneratedAgents": "3"}
    config = load_config(project, overrides=overrides, env=env)
    assert config.settings.run.include_dashboard is True
    assert config.settings.model.max_calls_per_run == 7
    assert config.settings.trace.redact_patterns == ["secret-\\w+", "token=\\S+"]
    assert config.settings.model.replay_lenient is True
    assert config.flags["evolution.maxGeneratedAgents"] == 3

    json_list = {"AIGENTFLOW_TRACE__REDACT_PATTERNS": '["a,b", "c"]'}
    assert load_config(project, env=env | json_list).get("trace.redact_patterns") == ["a,b", "c"]


def test_unknown_key_in_a_file_suggests_the_closest(project: Path, env: dict[str, str]) -> None:
    user = write(user_config_file(env), '[model]\nnmae = "x"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(project, env=env)
    message = str(caught.value)
    assert "model.nmae" in message
    assert "did you mean model.name" in message
    assert f"user file {user}" in message


def test_bad_value_names_key_value_range_and_layer(project: Path, env: dict[str, str]) -> None:
    proj = write(project_file(project), "[model]\nmax_validation_retries = 11\n")
    with pytest.raises(ConfigError) as caught:
        load_config(project, env=env)
    message = str(caught.value)
    assert "model.max_validation_retries = 11" in message
    assert "a whole number from 0 to 10" in message
    assert f"project file {proj}" in message


@pytest.mark.parametrize(
    ("key", "text", "allowed"),
    [
        ("model.temperature", "3", "a number from 0 to 2"),
        ("model.timeout_s", "0", "a number > 0"),
        ("model.max_calls_per_run", "many", "a whole number >= 1"),
        ("run.include_dashboard", "maybe", "true or false"),
        ("flags.preset", "v3", "one of mvp, v1, v2, enterprise"),
        ("flags.agents.tester", "2", "true or false"),
    ],
)
def test_bad_env_value_names_the_variable(
    project: Path, env: dict[str, str], key: str, text: str, allowed: str
) -> None:
    variable = "AIGENTFLOW_" + key.upper().replace(".", "__")
    with pytest.raises(ConfigError) as caught:
        load_config(project, env=env | {variable: text})
    message = str(caught.value)
    assert f"{key} = {text!r}" in message
    assert allowed in message
    assert f"env {variable}" in message


def test_env_variable_matching_no_key_is_an_error(project: Path, env: dict[str, str]) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(project, env=env | {"AIGENTFLOW_MODEL__NAM": "x"})
    assert "AIGENTFLOW_MODEL__NAM " in str(caught.value)
    assert "AIGENTFLOW_MODEL__NAME" in str(caught.value)


def test_unknown_command_line_key(project: Path, env: dict[str, str]) -> None:
    expected = r"'run\.tennant' in command line; did you mean run\.tenant"
    with pytest.raises(ConfigError, match=expected):
        load_config(project, overrides={"run.tennant": "x"}, env=env)


@pytest.mark.parametrize(
    "line", ['temperature = "0.5"', "replay_lenient = 1", "max_calls_per_run = true"]
)
def test_file_values_must_have_the_fields_toml_type(
    project: Path, env: dict[str, str], line: str
) -> None:
    write(project_file(project), f"[model]\n{line}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(project, env=env)
    key = line.split(" = ")[0]
    assert f"model.{key} = " in str(caught.value)
    assert "allowed: " in str(caught.value)


def test_malformed_toml_names_the_file(project: Path, env: dict[str, str]) -> None:
    proj = write(project_file(project), '[model\nname = "x"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(project, env=env)
    assert str(proj) in str(caught.value)
    assert "line 1" in str(caught.value)


def test_redact_pattern_that_does_not_compile(project: Path, env: dict[str, str]) -> None:
    write(project_file(project), '[trace]\nredact_patterns = ["ok", "(unclosed"]\n')
    with pytest.raises(ConfigError, match=r"'\(unclosed' does not compile"):
        load_config(project, env=env)


def test_hooks_from_both_files_user_first(project: Path, env: dict[str, str]) -> None:
    write(user_config_file(env), '[[hooks]]\nevent = "run.completed"\ncommand = "notify"\n')
    write(project_file(project), '[[hooks]]\nentry_point = "myhooks:on_event"\ntimeout_s = 2\n')
    hooks = load_config(project, env=env).settings.hooks
    assert [(h.event, h.command, h.entry_point) for h in hooks] == [
        ("run.completed", "notify", None),
        ("*", None, "myhooks:on_event"),
    ]
    assert hooks[1].timeout_s == 2


@pytest.mark.parametrize(
    ("hook", "expected"),
    [
        ('command = "a"\nentry_point = "m:f"', "exactly one of `command` or `entry_point`"),
        ('event = "x"', "exactly one of `command` or `entry_point`"),
        ('entry_point = "module_only"', "must look like 'module:function'"),
        ('command = "a"\ntimeout_s = 0', "timeout_s"),
        ('command = "a"\nretries = 3', "retries"),
    ],
)
def test_invalid_hooks(project: Path, env: dict[str, str], hook: str, expected: str) -> None:
    proj = write(project_file(project), f'[[hooks]]\ncommand = "ok"\n\n[[hooks]]\n{hook}\n')
    with pytest.raises(ConfigError) as caught:
        load_config(project, env=env)
    assert f"hook #2 in project file {proj}" in str(caught.value)
    assert expected in str(caught.value)


def test_hooks_must_be_an_array_of_tables(project: Path, env: dict[str, str]) -> None:
    write(project_file(project), '[hooks]\ncommand = "a"\n')
    with pytest.raises(ConfigError, match=r"\[\[hooks\]\]"):
        load_config(project, env=env)


def test_set_and_unset_keep_comments(project: Path, env: dict[str, str]) -> None:
    original = '# chosen by the team\n[model]\n# keep this one\nname = "a/b"\n'
    path = write(project_file(project), original)
    set_value(path, "model.temperature", "0.5")
    set_value(path, "flags.agents.tester", "true")
    set_value(path, "trace.redact_patterns", "x+,y+")
    text = path.read_text()
    assert "# chosen by the team" in text and "# keep this one" in text
    config = load_config(project, env=env)
    assert config.get("model.temperature") == 0.5
    assert config.flags["agents.tester"] is True
    assert config.get("trace.redact_patterns") == ["x+", "y+"]
    assert config.sources["flags.agents.tester"] == f"project file {path}"

    assert unset_value(path, "model.temperature") is True
    assert unset_value(path, "flags.agents.tester") is True
    assert unset_value(path, "model.temperature") is False
    text = path.read_text()
    assert "# keep this one" in text and 'name = "a/b"' in text and "temperature" not in text
    assert load_config(project, env=env).sources["model.temperature"] == "default"


def test_set_creates_the_file_and_refuses_bad_input(tmp_path: Path) -> None:
    path = tmp_path / "new" / "dir" / "config.toml"
    set_value(path, "run.tenant", "acme")
    assert path.read_text() == '[run]\ntenant = "acme"\n'
    with pytest.raises(ConfigError, match=r"model.temperature = '9'.*from 0 to 2"):
        set_value(path, "model.temperature", "9")
    with pytest.raises(ConfigError, match=r"did you mean run.tenant"):
        set_value(path, "run.tenat", "x")
    with pytest.raises(ConfigError, match="did you mean"):
        unset_value(path, "run.tenat")
    assert path.read_text() == '[run]\ntenant = "acme"\n'


def test_unset_removes_a_flag_written_as_a_nested_table(tmp_path: Path) -> None:
    path = write(tmp_path / "config.toml", "[flags.agents]\ntester = true\nanalyst = false\n")
    assert unset_value(path, "flags.agents.tester") is True
    assert "tester" not in path.read_text() and "analyst = false" in path.read_text()


def test_known_keys_and_descriptions() -> None:
    keys = known_keys()
    assert keys[0] == "model.name"
    assert {"run.ray_address", "trace.redact_patterns", "flags.preset"} <= set(keys)
    assert "flags.agents.analyst" in keys
    assert "budget" in describe_key("model.max_calls_per_run").lower()
    assert "mvp=true" in describe_key("flags.agents.analyst")
    with pytest.raises(ConfigError, match="hooks"):
        describe_key("hooks")


def test_recorded_settings_read_leniently_while_config_files_stay_strict(project: Path, env: dict[str, str]) -> None:
    """A run's recorded settings (``RunRecord.config``) come from whichever version recorded them: keys it
    no longer knows are ignored, missing ones get defaults, and a value a later check refuses still reads.
    The same unknown key in a config file is refused."""
    from aigentflow.config.settings import Settings

    recorded = {"model": {"name": "openai/gpt-4o-mini", "stream": True}, "legacy": {"x": 1},
                "build": {"env_passthrough": ["MYAPP_API_KEY"], "memory_mb": 4096},
                "hooks": [{"command": "true", "retries": 2}]}
    settings = Settings.from_stored(recorded)
    assert settings.model.name == "openai/gpt-4o-mini" and settings.model.max_calls_per_run == 200
    assert settings.build.env_passthrough == ["MYAPP_API_KEY"] and settings.build.memory_mb == 4096
    assert settings.build.timeout_s == 600.0 and settings.git.merge_style == "merge"
    assert [(h.event, h.command, h.timeout_s) for h in settings.hooks] == [("*", "true", 10.0)]
    assert Settings.from_stored({}) == Settings()
    assert Settings.from_stored(Settings().model_dump(mode="json")) == Settings()
    write(project_file(project), '[model]\nname = "replay/demo"\nstream = true\n')
    with pytest.raises(ConfigError, match="stream"):
        load_config(project, env=env)


# --- the `aigentflow config` commands, in a real git repository ---------------------------------


@pytest.fixture
def repo(tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / ".aigentflow").mkdir()
    (root / ".aigentflow" / "state.db").touch()
    monkeypatch.chdir(root)
    return root


runner = CliRunner()


def test_cli_set_get_list_in_project(repo: Path) -> None:
    result = runner.invoke(app, ["set", "model.temperature", "0.25"])
    assert result.exit_code == 0, result.output
    assert "temperature = 0.25" in project_file(repo).read_text()

    assert runner.invoke(app, ["get", "model.temperature"]).output == "0.25\n"
    got = json.loads(runner.invoke(app, ["get", "model.temperature", "--json"]).output)
    assert got == {
        "key": "model.temperature",
        "value": 0.25,
        "source": f"project file {project_file(repo)}",
    }

    listed = json.loads(runner.invoke(app, ["list", "--json"]).output)
    assert len(listed) == len(known_keys())
    assert {"key": "flags.agents.tester", "value": False, "source": "preset mvp"} in listed
    changed = json.loads(runner.invoke(app, ["list", "--json", "--hide-defaults"]).output)
    assert [row["key"] for row in changed] == ["model.temperature"]

    table = runner.invoke(app, ["list"])
    assert table.exit_code == 0
    assert "replay/demo" in table.output and "0.25" in table.output


def test_cli_user_scope_and_env(repo: Path, home: Path) -> None:
    assert runner.invoke(app, ["set", "--user", "run.tenant", "acme"]).exit_code == 0
    assert 'tenant = "acme"' in (home / "config.toml").read_text()
    result = runner.invoke(app, ["get", "run.tenant", "--json"])
    assert json.loads(result.output)["source"] == f"user file {home / 'config.toml'}"

    env = {"AIGENTFLOW_MODEL__NAME": "x/y"}
    result = runner.invoke(app, ["get", "model.name", "--json"], env=env)
    assert json.loads(result.output) == {
        "key": "model.name",
        "value": "x/y",
        "source": "env AIGENTFLOW_MODEL__NAME",
    }
    assert runner.invoke(app, ["unset", "--user", "run.tenant"]).exit_code == 0
    assert runner.invoke(app, ["get", "run.tenant"]).output == "default\n"


def test_cli_bad_input_exits_2(repo: Path) -> None:
    bad_value = runner.invoke(app, ["set", "model.temperature", "5"])
    assert bad_value.exit_code == 2
    assert "model.temperature = '5'" in bad_value.output and "0 to 2" in bad_value.output
    assert not project_file(repo).exists()

    unknown = runner.invoke(app, ["get", "model.nam"])
    assert unknown.exit_code == 2
    assert "did you mean model.name" in unknown.output

    bad_env = runner.invoke(app, ["list"], env={"AIGENTFLOW_RUN__NOPE": "1"})
    assert bad_env.exit_code == 2
    assert "AIGENTFLOW_RUN__NOPE" in bad_env.output

    assert runner.invoke(app, ["set", "model.name"]).exit_code == 2


def test_cli_project_scope_needs_an_initialised_git_repo(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    outside = tmp_path / "plain"
    outside.mkdir()
    monkeypatch.chdir(outside)
    result = runner.invoke(app, ["set", "run.tenant", "acme"])
    assert result.exit_code == 2
    assert "not inside a git repository" in result.output

    subprocess.run(["git", "init", "-q", str(outside)], check=True)
    result = runner.invoke(app, ["set", "run.tenant", "acme"])
    assert result.exit_code == 2
    assert "aigentflow init" in result.output
    assert runner.invoke(app, ["get", "run.tenant"]).output == "default\n"
