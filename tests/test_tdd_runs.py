"""Tests first, the fix loop and the test guard, as a user runs them: `aigentflow run` on a real git
repository whose pytest suite runs in the sandbox (results read from JUnit XML), replayed models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aigentflow.gitops import names
from aigentflow.store.sqlite import SQLiteRunStore
from tests.conftest import aigentflow
from tests.worktree_project import (
    cassette,
    developer,
    fixer,
    git,
    make_project,
    task,
    tdd_flags,
    value_module,
    value_test,
    written_tests,
)

pytestmark = pytest.mark.ray

REQUEST = "Add value functions to calc"


@pytest.fixture
def project(tmp_path: Path, user_config: Path) -> Path:
    return make_project(tmp_path / "calc")


def run(project: Path, address: str, entries: list[dict], tasks: list[dict] | None = None):
    model = cassette(project.parent / "tdd.json", tasks or [task("T1", "value_1")], entries)
    return aigentflow("run", REQUEST, "--model", model, "--address", address, *tdd_flags(), cwd=project,
                      timeout=300)


def the_run(project: Path) -> tuple[dict, dict[str, dict]]:
    store = SQLiteRunStore(project / ".aigentflow" / "state.db", readonly=True)
    try:
        record = store.list_runs(1)[0]
        return record.to_dict(), {s.step: {"status": s.status, "output": s.output, "error": s.error}
                                  for s in store.steps(record.id)}
    finally:
        store.close()


def evidence(project: Path, run_id: str) -> dict:
    return json.loads((project / ".aigentflow" / "runs" / run_id / "evidence.json").read_text())


def test_tests_are_written_first_fail_then_pass_and_history_shows_it(project: Path, ray_address: str) -> None:
    result = run(project, ray_address, [written_tests("T1", value_test(1)), developer("T1", value_module(1, 1))])
    assert result.returncode == 0, result.stderr + result.stdout
    record, steps = the_run(project)
    assert record["state"] == "COMPLETED"
    t1 = steps["build"]["output"]["tasks"]["T1"]
    assert t1["tdd"] == {"tests_written": ["tests/test_mod_1.py"], "failed_first": True, "violations": []}
    red, green = t1["steps"]
    assert (red["role"], red["status"]) == ("tester", "failed") and red["results"]["source"] == "junit"
    assert (green["role"], green["status"]) == ("backend_developer", "passed")
    assert green["results"]["failed"] == 0 and green["results"]["passed"] == 2  # greet + value_1
    # the whole suite ran again on the feature branch (TESTING) before the merge
    assert steps["test"]["output"]["ok"] and steps["test"]["output"]["results"]["passed"] == 2
    branch = names.task_branch(record["id"], "T1")
    log = git(project, "log", "-2", "--format=%s|%(trailers:key=Aigentflow-Agent,valueonly)", branch)
    assert [line for line in log.splitlines() if line] == ["feat: T1|backend_developer", "test(T1): value_1|tester"]


def test_the_bug_fixer_repairs_a_failing_implementation_on_attempt_2(project: Path, ray_address: str) -> None:
    result = run(project, ray_address, [
        written_tests("T1", value_test(1)), developer("T1", value_module(1, 0)),
        fixer("T1", 1, value_module(1, 2)), fixer("T1", 2, value_module(1, 1))])
    assert result.returncode == 0, result.stderr + result.stdout
    record, steps = the_run(project)
    assert record["state"] == "COMPLETED"
    t1 = steps["build"]["output"]["tasks"]["T1"]
    assert [(a["attempt"], a["status"]) for a in t1["fix_attempts"]] == [(1, "failed"), (2, "passed")]
    assert t1["fix_attempts"][0]["failing_before"] == ["tests.test_mod_1::test_value_1"]
    assert (project / "calc" / "mod_1.py").read_text() == "def value_1():\n    return 1\n"


def test_three_failed_fixes_wait_for_a_human_with_the_attempts_as_evidence(project: Path, ray_address: str) -> None:
    main_before = git(project, "rev-parse", "main")
    result = run(project, ray_address, [
        written_tests("T1", value_test(1)), developer("T1", value_module(1, 0)),
        *[fixer("T1", n, value_module(1, 10 + n)) for n in (1, 2, 3)]])
    assert result.returncode != 0
    record, steps = the_run(project)
    assert record["state"] == "AWAITING_APPROVAL"
    assert "after 3 fix attempt(s)" in steps["build"]["error"]
    attempts = evidence(project, record["id"])["tasks"]["T1"]["fix_attempts"]
    assert [a["status"] for a in attempts] == ["failed"] * 3
    assert all("assert 1" in a["tests"]["results"]["cases"][-1]["message"] or a["tests"]["results"]["failed"]
               for a in attempts)
    assert git(project, "rev-parse", "main") == main_before


def test_a_test_that_passes_before_any_implementation_is_flagged(project: Path, ray_address: str) -> None:
    vacuous = {"tests/test_greet_again.py": "from calc.app import greet\n\n\ndef test_greet():\n"
                                           "    assert greet() == 'hello'\n"}
    result = run(project, ray_address,
                 [written_tests("T1", {**value_test(1), **vacuous}), developer("T1", value_module(1, 1))])
    assert result.returncode == 0, result.stderr + result.stdout
    _, steps = the_run(project)
    tdd = steps["build"]["output"]["tasks"]["T1"]["tdd"]
    assert tdd["violations"] == ["tests.test_greet_again::test_greet"] and tdd["failed_first"] is True


@pytest.mark.parametrize("weakened, reason", [
    ({"tests/test_mod_1.py": "from calc.mod_1 import value_1\n\n\ndef test_value_1():\n    value_1()\n"},
     "removes 1 assertion"),
    ({"tests/test_mod_1.py": "import pytest\n\nfrom calc.mod_1 import value_1\n\n\n@pytest.mark.skip\n"
                             "def test_value_1():\n    assert value_1() == 1\n"}, "skipped"),
])
def test_a_fix_that_weakens_the_tests_is_refused(project: Path, ray_address: str, weakened: dict,
                                                 reason: str) -> None:
    result = run(project, ray_address, [written_tests("T1", value_test(1)), developer("T1", value_module(1, 0)),
                                        fixer("T1", 1, weakened)])
    assert result.returncode != 0
    record, _ = the_run(project)
    assert record["state"] == "AWAITING_APPROVAL"
    t1 = evidence(project, record["id"])["tasks"]["T1"]
    assert t1["status"] == "refused" and reason in t1["detail"]
    branch = names.task_branch(record["id"], "T1")
    assert "assert value_1() == 1" in git(project, "show", f"{branch}:tests/test_mod_1.py")


def test_the_tester_may_write_tests_only(project: Path, ray_address: str) -> None:
    result = run(project, ray_address, [written_tests("T1", {**value_test(1), **value_module(1, 1)}),
                                        developer("T1", value_module(1, 1))])
    assert result.returncode != 0
    record, _ = the_run(project)
    t1 = evidence(project, record["id"])["tasks"]["T1"]
    assert "the tester writes tests only" in t1["steps"][0]["detail"]


def run_reviewed(project: Path, address: str, entries: list[dict]):
    from tests.worktree_project import review_flags

    model = cassette(project.parent / "reviewed.json", [task("T1", "value_1")], entries)
    return aigentflow("run", REQUEST, "--model", model, "--address", address, *review_flags(), cwd=project,
                      timeout=300)


def test_request_changes_goes_back_to_the_developer_then_approval(project: Path, ray_address: str) -> None:
    from tests.worktree_project import review, rework

    unused_import = {"calc/mod_1.py": "import os\n\n\ndef value_1():\n    return 1\n"}  # ruff reports F401 here
    comment = {"path": "calc/mod_1.py", "line": 4, "body": "Add a docstring.", "severity": "nit"}
    result = run_reviewed(project, ray_address, [
        written_tests("T1", value_test(1)), developer("T1", unused_import),
        review("T1", 1, "approve", [comment]),  # the model approves, the linter does not: not approved
        rework("T1", 1, {"calc/mod_1.py": 'def value_1():\n    """One."""\n    return 1\n'}),
        review("T1", 2, "approve")])
    assert result.returncode == 0, result.stderr + result.stdout
    record, steps = the_run(project)
    assert record["state"] == "COMPLETED"
    first, second = steps["build"]["output"]["tasks"]["T1"]["reviews"]
    assert first["model_verdict"] == "approve" and first["verdict"] == "request_changes"
    assert {"path": "calc/mod_1.py", "line": 1, "body": "F401: `os` imported but unused", "severity": "major"} \
        in first["comments"] and comment in first["comments"]
    assert second["verdict"] == "approve" and second["lint"]["findings"] == []
    assert steps["review"]["output"]["verdict"] == "approve"
    assert steps["review"]["output"]["task_verdicts"] == {"T1": "approve"}
    assert '"""One."""' in (project / "calc" / "mod_1.py").read_text()


def test_a_reviewer_who_keeps_requesting_changes_hands_over_to_a_human(project: Path, ray_address: str) -> None:
    from tests.worktree_project import review, rework

    no = {"path": "calc/mod_1.py", "line": 1, "body": "Name it better.", "severity": "major"}
    result = run_reviewed(project, ray_address, [
        written_tests("T1", value_test(1)), developer("T1", value_module(1, 1)),
        review("T1", 1, "request_changes", [no]), rework("T1", 1, value_module(1, 1)),
        review("T1", 2, "request_changes", [no]), rework("T1", 2, value_module(1, 1)),
        review("T1", 3, "request_changes", [no])])
    assert result.returncode != 0
    record, steps = the_run(project)
    assert record["state"] == "AWAITING_APPROVAL"
    assert "still requests changes after 2 rounds" in steps["build"]["error"]
    reviews = evidence(project, record["id"])["tasks"]["T1"]["reviews"]
    assert [r["verdict"] for r in reviews] == ["request_changes"] * 3 and reviews[-1]["comments"] == [no]


@pytest.mark.parametrize("module, passes", [
    ('def value_1():\n    return 1\n', True),
    ('def value_1(times=None):\n    if times is not None:\n        return 1 * times\n    return 1\n', False),
])
def test_coverage_of_changed_lines_is_recorded_and_enforced(project: Path, ray_address: str, module: str,
                                                            passes: bool) -> None:
    model = cassette(project.parent / "cov.json", [task("T1", "value_1")],
                     [written_tests("T1", value_test(1)), developer("T1", {"calc/mod_1.py": module})])
    result = aigentflow("run", REQUEST, "--model", model, "--address", ray_address,
                        *tdd_flags("flags.features.coverageTracking=true", "build.coverage_threshold=80"),
                        cwd=project, timeout=300)
    record, steps = the_run(project)
    if passes:
        assert result.returncode == 0, result.stderr + result.stdout
        coverage = steps["build"]["output"]["tasks"]["T1"]["coverage"]
        assert coverage["measured"] and coverage["changed_percent"] == 100.0 and coverage["changed_lines"] == 2
        baseline = steps["build"]["output"]["coverage_baseline"]
        suite = steps["test"]["output"]["coverage"]
        assert suite["before"] == baseline["total_percent"] and suite["after"] >= suite["before"]
        assert suite["delta"] == round(suite["after"] - suite["before"], 2)
        metrics = json.loads(aigentflow("status", "--json", cwd=project).stdout)["metrics"]
        assert metrics["agent_success_rate"] == 1.0 and metrics["build_pass_rate"] == 1.0
        assert metrics["coverage_percent"] == suite["after"] and metrics["coverage_delta"] == suite["delta"]
        shown = aigentflow("status", cwd=project, env=None).stdout
        assert "v1.0 metrics: agent success 100%, build pass 100%" in shown and "100%" in shown
    else:
        assert result.returncode != 0 and record["state"] == "AWAITING_APPROVAL"
        t1 = evidence(project, record["id"])["tasks"]["T1"]
        assert t1["status"] == "coverage_below" and t1["coverage"]["changed_percent"] == 75.0
        assert t1["coverage"]["uncovered"] == {"calc/mod_1.py": [3]}
        assert "under build.coverage_threshold (80%)" in steps["build"]["error"]


def test_a_javascript_project_goes_through_the_same_path_with_npm_test(tmp_path: Path, user_config: Path,
                                                                      ray_address: str) -> None:
    import os
    import subprocess

    from aigentflow.cli.project_cmd import initialise
    from tests.worktree_project import GIT_ENV

    root = tmp_path / "jsvalues"
    (root / "src").mkdir(parents=True)
    (root / "package.json").write_text(json.dumps({"name": "jsvalues", "version": "1.0.0", "private": True,
                                                   "scripts": {"test": "node --test"}}, indent=2))
    (root / "src" / "greet.js").write_text("exports.greet = () => 'hello';\n")
    for args in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-qm", "jsvalues"]):
        subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, env={**os.environ, **GIT_ENV})
    assert initialise(root)["facts"]["test_command"] == "npm test"
    test_js = ("const test = require('node:test');\nconst assert = require('node:assert');\n"
               "const { value } = require('../src/value.js');\n\n"
               "test('value is 42', () => {\n  assert.strictEqual(value(), 42);\n});\n")
    model = cassette(tmp_path / "js.json", [task("T1", "value")], [
        written_tests("T1", {"test/value.test.js": test_js}),
        developer("T1", {"src/value.js": "exports.value = () => 41;\n"}),
        fixer("T1", 1, {"src/value.js": "exports.value = () => 42;\n"})])
    flags = ["flags.agents.backendDev=true", "flags.agents.gitAgent=true", "flags.agents.tester=true",
             "flags.agents.bugFixer=true", "flags.features.tddWorkflow=true", "flags.features.bugFixLoop=true",
             "flags.features.gitWorktrees=true", "build.task_cpus=0.25"]
    result = aigentflow("run", "Add value()", "--model", model, "--address", ray_address,
                        *[a for f in flags for a in ("--set", f)], cwd=root, timeout=300)
    assert result.returncode == 0, result.stderr + result.stdout
    record, steps = the_run(root)
    t1 = steps["build"]["output"]["tasks"]["T1"]
    assert steps["build"]["output"]["test_command"] == "npm test"
    red = t1["steps"][0]["results"]  # node's runner wrote a JUnit report: results per test, not scraped text
    assert t1["tdd"]["failed_first"] is True and (red["source"], red["failed"]) == ("junit", 1)
    assert [a["status"] for a in t1["fix_attempts"]] == ["passed"]
    assert [c["id"] for c in t1["fix_attempts"][0]["tests"]["results"]["cases"]] == ["test::value is 42"]
    assert record["state"] == "COMPLETED" and (root / "src" / "value.js").read_text() == "exports.value = () => 42;\n"
    assert "pass 1" in t1["tests"]["stdout"]


def run_checked(project: Path, address: str, entries: list[dict], *extra: str):
    model = cassette(project.parent / "checked.json", [task("T1", "value_1")], entries)
    flags = tdd_flags("flags.agents.complianceAgent=true", *extra)
    return aigentflow("run", REQUEST, "--model", model, "--address", address, *flags, cwd=project, timeout=300)


@pytest.mark.parametrize("module, setting, kind", [
    ('KEY = "sk-proj-' + "abcdefghij" * 4 + '"\n\n\ndef value_1():\n    return 1\n', None, "secret"),
    ("def value_1():\n    return eval('1')\n", 'compliance.forbidden_patterns=["eval\\\\("]', "forbidden_pattern"),
])
def test_a_compliance_finding_blocks_the_merge_with_evidence(project: Path, ray_address: str, module: str,
                                                             setting: str | None, kind: str) -> None:
    main_before = git(project, "rev-parse", "main")
    result = run_checked(project, ray_address, [written_tests("T1", value_test(1)),
                                                developer("T1", {"calc/mod_1.py": module})],
                         *([setting] if setting else []))
    assert result.returncode != 0
    record, steps = the_run(project)
    assert record["state"] == "AWAITING_APPROVAL" and "Compliance Agent blocks" in steps["build"]["error"]
    t1 = evidence(project, record["id"])["tasks"]["T1"]
    [finding] = [f for f in t1["compliance"]["findings"] if f["blocking"]]
    assert (finding["kind"], finding["path"]) == (kind, "calc/mod_1.py") and finding["line"] >= 1
    assert t1["status"] == "blocked" and not t1.get("merged")
    assert git(project, "rev-parse", "main") == main_before
    assert "sk-proj-" not in (project / ".aigentflow" / "runs" / record["id"] / "evidence.json").read_text()


def test_a_denied_dependency_license_blocks_and_a_clean_change_merges(project: Path, ray_address: str) -> None:
    (project / "package.json").write_text(json.dumps({"name": "calc", "dependencies": {"leftpad-ish": "1.0.0"}}))
    (project / ".gitignore").write_text("node_modules/\n.aigentflow/\n")
    git(project, "add", "package.json", ".gitignore")
    git(project, "-c", "user.name=u", "-c", "user.email=u@x", "commit", "-qm", "a js dependency")
    installed = project / "node_modules" / "leftpad-ish"
    installed.mkdir(parents=True)
    (installed / "package.json").write_text(json.dumps({"name": "leftpad-ish", "license": "AGPL-3.0-only"}))
    result = run_checked(project, ray_address, [written_tests("T1", value_test(1)),
                                                developer("T1", value_module(1, 1))])
    assert result.returncode != 0
    record, _ = the_run(project)
    t1 = evidence(project, record["id"])["tasks"]["T1"]
    [finding] = t1["compliance"]["findings"]
    assert finding["kind"] == "license" and "AGPL-3.0-only" in finding["detail"] and finding["blocking"]
    # the policy allows it once AGPL is off the list: the same change merges
    (installed / "package.json").write_text(json.dumps({"name": "leftpad-ish", "license": "MIT"}))
    resumed = aigentflow("resume", record["id"], "--address", ray_address, cwd=project, timeout=300)
    assert resumed.returncode == 0, resumed.stderr + resumed.stdout
    record, steps = the_run(project)
    assert record["state"] == "COMPLETED" and steps["merge"]["output"]["compliance"]["blocking"] is False


def test_the_ui_designer_specs_front_end_tasks_for_the_frontend_developer(project: Path, ray_address: str) -> None:
    from tests.worktree_project import developer as dev_entry

    screen = {"task": "T1", "name": "Value badge", "layout": "A badge showing value_1() on the page header.",
              "components": [{"name": "Badge", "purpose": "Shows the value", "states": ["loading", "filled"]}],
              "accessibility": ["The badge has an aria-label naming the value"]}
    tasks = [{**task("T1", "value badge"), "type": "frontend"}, task("T2", "value_2")]
    model = cassette(project.parent / "ui.json", tasks, [
        {"role": "ui_designer", "step": "design", "attempt": 1,
         "response": {"summary": "One badge.", "screens": [screen]}},
        dev_entry("T1", value_module(1, 1), role="frontend_developer"),
        dev_entry("T2", value_module(2, 2))])
    flags = ["flags.agents.uiDesigner=true", "flags.agents.frontendDev=true"]
    result = aigentflow("run", REQUEST, "--model", model, "--address", ray_address,
                        *tdd_flags(*flags, "flags.agents.tester=false"), cwd=project, timeout=300)
    assert result.returncode == 0, result.stderr + result.stdout
    record, steps = the_run(project)
    assert steps["design"]["output"]["screens"] == [screen]
    design_md = (project / ".aigentflow" / "runs" / record["id"] / "ui_design.md").read_text()
    assert "## T1: Value badge" in design_md and "aria-label" in design_md
    by_agent = git(project, "log", "--format=%(trailers:key=Aigentflow-Task,valueonly,separator=)|"
                                     "%(trailers:key=Aigentflow-Agent,valueonly,separator=)", "main")
    assert "T1|frontend_developer" in by_agent and "T2|backend_developer" in by_agent


def test_the_project_analyzer_measures_a_baseline_and_briefs_every_later_agent(project: Path,
                                                                              ray_address: str) -> None:
    summary = {"summary": "calc: a tiny Python package tested with unittest-style tests under tests/.",
               "conventions": ["One module per value function"], "risks": ["No type checking"]}
    model = cassette(project.parent / "analyzed.json", [task("T1", "value_1")], [
        {"role": "project_analyzer", "step": "analyze/project", "attempt": 1, "response": summary},
        written_tests("T1", value_test(1)), developer("T1", value_module(1, 1))])
    result = aigentflow("run", REQUEST, "--model", model, "--address", ray_address,
                        *tdd_flags("flags.agents.projectAnalyzer=true"), cwd=project, timeout=300)
    assert result.returncode == 0, result.stderr + result.stdout
    record, steps = the_run(project)
    analysis = steps["analyze"]["output"]["project"]
    assert analysis["test_command"] == "python3 -m pytest -q"
    assert analysis["coverage_method"] == "coverage.py around `python3 -m pytest -q`"
    assert analysis["baseline"]["tests_ok"] is True and analysis["baseline"]["total_percent"] > 0
    assert analysis["summary"] == summary and "Convention: One module per value function" in analysis["context"]
    assert steps["analyze"]["output"]["notes"]["summary"]  # the Analyst still did its research
    brief = (project / ".aigentflow" / "runs" / record["id"] / "project_analysis.md").read_text()
    assert "Test baseline: passing" in brief


def test_the_v1_preset_carries_a_request_to_tested_reviewed_merged_code(project: Path, ray_address: str) -> None:
    from tests.worktree_project import PYTEST_COMMAND, review

    model = cassette(project.parent / "v1.json", [task("T1", "value_1")], [
        {"role": "project_analyzer", "step": "analyze/project", "attempt": 1,
         "response": {"summary": "calc, a tiny package.", "conventions": [], "risks": []}},
        written_tests("T1", value_test(1)), developer("T1", value_module(1, 1)), review("T1", 1, "approve")])
    result = aigentflow("run", REQUEST, "--model", model, "--address", ray_address, "--set", "flags.preset=v1",
                        "--set", f"build.test_command={PYTEST_COMMAND}", "--set", "build.task_cpus=0.25",
                        cwd=project, timeout=300)
    assert result.returncode == 0, result.stderr + result.stdout
    record, steps = the_run(project)
    assert record["state"] == "COMPLETED"
    assert list(steps) == ["analyze", "plan", "architect", "design", "build", "test", "review", "merge"]
    t1 = steps["build"]["output"]["tasks"]["T1"]
    assert t1["tdd"]["failed_first"] and t1["reviews"][-1]["verdict"] == "approve"
    assert t1["coverage"]["changed_percent"] == 100.0 and t1["compliance"]["blocking"] is False
    assert steps["design"]["output"]["screens"] == []  # no front-end task: no model call
    assert (project / "calc" / "mod_1.py").exists()
