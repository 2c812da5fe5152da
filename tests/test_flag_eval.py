"""Flags evaluated through aigentflow's OpenFeature provider: presets unchanged, targeting, sticky A/B
splits, monotonic rollouts, type mismatches, and the flags files' errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import Reason

from aigentflow.config.flags import PRESETS, resolve_flags
from aigentflow.config.loader import load_config
from aigentflow.exceptions import ConfigError
from aigentflow.flags.definitions import parse_definition
from aigentflow.flags.evaluate import Evaluator, subject_fraction
from aigentflow.flags.load import definitions, flag_files
from aigentflow.flags.provider import AigentflowProvider, client, run_flags

FLAGS_TOML = """
[flags."enterprise.ssoRequired"]
[[flags."enterprise.ssoRequired".rules]]
when = { tenant = ["acme", "globex"] }
value = true

[flags."agents.reviewer"]
rules = [{ when = { role = "reviewer", tenant = "acme" }, value = true }]

[flags."ui.theme"]
type = "string"
default = "classic"
split = { classic = 50, dark = 50 }

[flags."features.newPlanner"]
type = "boolean"
default = false
rollout = { percent = 30 }

[flags."planner.maxSteps"]
type = "integer"
default = 8
"""


def project(tmp_path: Path, text: str = FLAGS_TOML) -> Path:
    root = tmp_path / "proj"
    (root / ".aigentflow").mkdir(parents=True)
    (root / ".aigentflow" / "flags.toml").write_text(text)
    return root


def provider_for(root: Path | None, **overrides: str) -> AigentflowProvider:
    return AigentflowProvider.for_project(root, overrides, env={"AIGENTFLOW_CONFIG_HOME": str(root or "/nonexistent")})


@pytest.mark.parametrize("preset", list(PRESETS))
def test_with_no_flags_file_every_preset_resolves_as_before(preset: str) -> None:
    provider = provider_for(None, **{"flags.preset": preset, "flags.evolution.maxGeneratedAgents": "3"})
    values, decided = run_flags(provider, {"tenant": "default", "user": "alice"}, {"agents.reviewer": "reviewer"})
    assert values == resolve_flags(preset, {"evolution.maxGeneratedAgents": 3})
    assert decided == {}


def test_through_the_openfeature_client_preset_flags_are_static(tmp_path: Path) -> None:
    flags = client(provider_for(project(tmp_path)), domain="test-static")
    details = flags.get_boolean_details("agents.analyst", False)
    assert (details.value, details.reason, details.error_code) == (True, Reason.STATIC, None)
    assert flags.get_integer_value("evolution.maxGeneratedAgents", 0) == 5
    assert flags.get_integer_value("planner.maxSteps", 0) == 8


def test_targeting_rules_match_tenant_lists_and_all_conditions(tmp_path: Path) -> None:
    flags = client(provider_for(project(tmp_path)), domain="test-targeting")
    acme = EvaluationContext("alice", {"tenant": "acme"})
    details = flags.get_boolean_details("enterprise.ssoRequired", False, acme)
    assert (details.value, details.reason, details.variant) == (True, Reason.TARGETING_MATCH, "rule-1")
    other = flags.get_boolean_details("enterprise.ssoRequired", True, EvaluationContext("bob", {"tenant": "initech"}))
    assert (other.value, other.reason) == (False, Reason.DEFAULT)
    assert flags.get_boolean_value("agents.reviewer", False, EvaluationContext("a", {"tenant": "acme"})) is False
    both = EvaluationContext("a", {"tenant": "acme", "role": "reviewer"})
    assert flags.get_boolean_value("agents.reviewer", False, both) is True


def test_a_flag_of_the_wrong_type_is_type_mismatch_with_a_clear_message(tmp_path: Path) -> None:
    flags = client(provider_for(project(tmp_path)), domain="test-mismatch")
    details = flags.get_integer_details("agents.analyst", 7)
    assert details.value == 7 and details.reason == Reason.ERROR
    assert details.error_code == ErrorCode.TYPE_MISMATCH
    assert details.error_message == ("flag 'agents.analyst' is a boolean flag, asked for as integer: "
                                     "use get_boolean_value")
    assert flags.get_string_details("planner.maxSteps", "x").error_code == ErrorCode.TYPE_MISMATCH
    assert flags.get_float_value("planner.maxSteps", 0.0) == 8.0  # a whole number is a number
    unknown = flags.get_boolean_details("agents.reviewr", False)
    assert unknown.error_code == ErrorCode.FLAG_NOT_FOUND and "did you mean agents.reviewer" in unknown.error_message


def test_a_split_gives_each_user_one_variant_in_about_the_weights(tmp_path: Path) -> None:
    provider = provider_for(project(tmp_path))
    answers = [provider.resolve_string_details("ui.theme", "", EvaluationContext(f"user-{n}")) for n in range(2000)]
    assert {a.reason for a in answers} == {Reason.SPLIT}
    assert {a.variant for a in answers} == {"classic", "dark"}
    dark = sum(a.value == "dark" for a in answers) / len(answers)
    assert 0.45 < dark < 0.55
    rollout = [provider.resolve_boolean_details("features.newPlanner", False, EvaluationContext(f"u{n}")).value
               for n in range(2000)]
    assert 0.26 < sum(rollout) / len(rollout) < 0.34


@settings(max_examples=200, deadline=None)
@given(user=st.text(min_size=1, max_size=30), tenant=st.sampled_from(["acme", "initech", "umbrella"]))
def test_a_subject_always_gets_the_same_variant(user: str, tenant: str) -> None:
    split = {"type": "string", "default": "a", "split": {"a": 20, "b": 30, "c": 50}}
    answers = set()
    for _ in range(3):  # fresh evaluators each time: nothing remembered, the hash decides
        evaluator = Evaluator({"x.theme": parse_definition("x.theme", split, None, "test")})
        answers.add(evaluator.evaluate("x.theme", {"tenant": tenant, "user": user}).variant)
    assert len(answers) == 1


@settings(max_examples=300, deadline=None)
@given(user=st.text(min_size=1, max_size=30), low=st.floats(0, 100), high=st.floats(0, 100))
def test_raising_a_rollout_never_moves_a_subject_out(user: str, low: float, high: float) -> None:
    low, high = sorted((low, high))

    def included(percent: float) -> bool:
        table = {"type": "boolean", "default": False, "rollout": {"percent": percent}}
        evaluator = Evaluator({"x.new": parse_definition("x.new", table, None, "test")})
        return evaluator.evaluate("x.new", {"user": user}).value

    if included(low):
        assert included(high)
    assert included(100.0) is True
    assert included(0.0) is False
    assert 0 <= subject_fraction("x.new", user) < 1


def test_a_flags_file_default_sits_between_the_preset_and_config_overrides(tmp_path: Path) -> None:
    root = project(tmp_path, '[flags."features.codeReview"]\ndefault = true\n')
    env = {"AIGENTFLOW_CONFIG_HOME": str(tmp_path / "home")}
    config = load_config(root, env=env)
    assert config.flags["features.codeReview"] is True
    assert config.sources["flags.features.codeReview"].startswith("flags file ")
    overridden = load_config(root, {"flags.features.codeReview": "false"}, env=env)
    assert overridden.flags["features.codeReview"] is False
    found = definitions(overridden, flag_files(root, env))
    assert found["features.codeReview"].default is False


@pytest.mark.parametrize(("text", "message"), [
    ('[flags."agents.reviewer"]\ndefault = "yes"\n', "'yes' is not true or false (it is a boolean flag)"),
    ('[flags."x.new"]\ndefault = true\n', "needs a type"),
    ('[flags."x.new"]\ntype = "bool"\ndefault = true\n', "type 'bool' is not one of boolean, integer, float, string"),
    ('[flags."agents.reviewer"]\nrules = [{ when = { tenent = "a" }, value = true }]\n', "did you mean tenant?"),
    ('[flags."agents.reviewer"]\nrules = [{ value = true }]\n', "(rule 1): a rule is"),
    ('[flags."x.new"]\ntype = "boolean"\ndefault = false\nrollout = { percent = 101 }\n', "from 0 to 100"),
    ('[flags."agents.reviewer"]\ntype = "string"\n', "the preset flag is boolean, not string"),
    ('[flags."evolution.maxGeneratedAgents"]\ndefault = -1\n', "a whole number >= 0"),
    ('[flags."agents.reviewer"]\ndefualt = true\n', "unknown field 'defualt' (did you mean default?)"),
])
def test_a_bad_flags_file_names_the_file_the_flag_and_what_fits(tmp_path: Path, text: str, message: str) -> None:
    root = project(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        provider_for(root)
    assert message in str(caught.value)
    assert str(root / ".aigentflow" / "flags.toml") in str(caught.value)


def test_runs_evaluate_each_role_flag_with_its_role(sample_repo: Path) -> None:
    from aigentflow.flags.provider import resolve_run_flags
    from aigentflow.project.paths import ProjectPaths

    (sample_repo / ".aigentflow" / "flags.toml").write_text(
        '[flags."agents.reviewer"]\nrules = [{ when = { role = "reviewer" }, value = true }]\n'
        '[flags."features.codeReview"]\nrules = [{ when = { role = "reviewer" }, value = true }]\n')
    flags, decided = resolve_run_flags(ProjectPaths(sample_repo), load_config(sample_repo))
    assert flags["agents.reviewer"] is True  # the Reviewer's own flag, evaluated with role=reviewer
    assert flags["features.codeReview"] is False  # no role in its context
    assert decided == {"agents.reviewer": {"variant": "rule-1", "reason": "TARGETING_MATCH"}}


def test_the_readme_example_flags_file_is_valid(tmp_path: Path) -> None:
    import re

    readme = Path(__file__).resolve().parents[1] / "aigentflow" / "flags" / "README.md"
    example = re.search(r"```toml\n(.*?)```", readme.read_text(), re.DOTALL).group(1)
    provider = provider_for(project(tmp_path, example))
    sso = provider.resolve_boolean_details("enterprise.ssoRequired", False, EvaluationContext("a", {"tenant": "acme"}))
    assert (sso.value, sso.reason) == (True, Reason.TARGETING_MATCH)
    assert provider.resolve_string_details("ui.theme", "", EvaluationContext("bob")).reason == Reason.SPLIT
