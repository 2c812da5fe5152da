"""The run-level fix loop: tasks that pass alone but break the suite together go TESTING -> FIXING ->
TESTING (at most 3 fixes), as a user runs it: `aigentflow run` on a real repository, pytest in the
sandbox, replayed models."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from aigentflow.store.sqlite import SQLiteRunStore
from tests.conftest import aigentflow
from tests.worktree_project import (
    APP,
    cassette,
    developer,
    git,
    make_project,
    task,
    tdd_flags,
)

pytestmark = pytest.mark.ray

REQUEST = "Say hello to the world, and add a shout"
# T1 changes greet() (and its test); T2 adds shout() built on the old greet(). Each passes alone; merged
# together, T2's test fails: only the whole suite on the feature branch (TESTING) can see it.
WORLD = APP.replace('"hello"', '"hello, world"')
WORLD_TEST = ("import unittest\n\nfrom calc.app import greet\n\n\nclass GreetTest(unittest.TestCase):\n"
              "    def test_greet(self):\n        self.assertEqual(greet(), 'hello, world')\n")
SHOUT_TEST = "from calc.shout import shout\n\n\ndef test_shout():\n    assert shout() == 'HELLO'\n"


def shout(body: str) -> str:
    return f"from calc.app import greet\n\n\ndef shout():\n    return {body}\n"


def suite_fix(number: int, body: str | None = None, files: dict[str, str] | None = None) -> dict:
    files = files if files is not None else {"calc/shout.py": shout(body or "")}
    return {"role": "bug_fixer", "step": f"fix/suite/{number}", "attempt": 1, "response": {
        "diagnosis": "shout() upper-cases the whole new greeting.", "summary": f"suite fix {number}",
        "commit_message": f"fix: shout after the new greeting ({number})",
        "edits": [{"path": p, "content": c} for p, c in files.items()]}}


@pytest.fixture
def project(tmp_path: Path, user_config: Path) -> Path:
    return make_project(tmp_path / "calc")


def run(project: Path, address: str, fixes: list[dict]):
    model = cassette(project.parent / "fix.json", [task("T1", "hello world"), task("T2", "shout")], [
        developer("T1", {"calc/app.py": WORLD, "tests/test_app.py": WORLD_TEST}),
        developer("T2", {"calc/shout.py": shout("greet().upper()"), "tests/test_shout.py": SHOUT_TEST}),
        *fixes])
    return aigentflow("run", REQUEST, "--model", model, "--address", address,
                      *tdd_flags("flags.features.tddWorkflow=false"), cwd=project, timeout=300)


def steps_of(project: Path) -> tuple[dict, list[tuple[str, str, dict]]]:
    store = SQLiteRunStore(project / ".aigentflow" / "state.db", readonly=True)
    try:
        record = store.list_runs(1)[0]
        return record.to_dict(), [(s.step, s.status, s.output or {}) for s in store.steps(record.id)]
    finally:
        store.close()


def test_a_suite_broken_by_merged_tasks_is_fixed_in_the_second_round(project: Path, ray_address: str) -> None:
    result = run(project, ray_address, [suite_fix(1, '"HELLO, WORLD!"'),
                                        suite_fix(2, 'greet().split(",")[0].upper()')])
    assert result.returncode == 0, result.stderr + result.stdout
    record, steps = steps_of(project)
    assert record["state"] == "COMPLETED"
    rounds = [(name, status) for name, status, _ in steps if name.split(".")[0] in ("test", "fix")]
    assert rounds == [("test", "completed"), ("fix", "completed"), ("test.2", "completed"), ("fix.2", "completed"),
                      ("test.3", "completed")]
    outputs = {name: output for name, _, output in steps}
    assert not outputs["test"]["ok"] and [c["id"] for c in outputs["test"]["failing"]] == \
        ["tests.test_shout::test_shout"]
    assert (outputs["fix"]["status"], outputs["fix"]["merged"]) == ("failed", False)  # its own tests failed
    assert (outputs["fix.2"]["status"], outputs["fix.2"]["merged"]) == ("passed", True)
    assert outputs["test.3"]["ok"] and outputs["test.3"]["results"]["failed"] == 0
    transitions = [t["to_state"] for t in json.loads(aigentflow("status", "--json", cwd=project).stdout)["transitions"]]
    assert transitions[transitions.index("TESTING"):] == ["TESTING", "FIXING", "TESTING", "FIXING", "TESTING",
                                                          "MERGING", "COMPLETED"]
    # merged into main; the project's own suite passes there, and history shows the fix
    assert (project / "calc" / "shout.py").read_text() == shout('greet().split(",")[0].upper()')
    assert "fix: shout after the new greeting (2)" in git(project, "log", "--format=%s", "main")
    suite = subprocess.run(["python3", "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=project,
                           capture_output=True, text=True, check=False)
    assert suite.returncode == 0, suite.stdout
    run_dir = project / ".aigentflow" / "runs" / record["id"]
    assert {"test_report.md", "test_report.2.md", "test_report.3.md", "fix_report.md", "fix_report.2.md"} <= \
        {p.name for p in run_dir.iterdir()}
    status = aigentflow("status", cwd=project).stdout
    assert "suite fix attempt 2: passed, merged" in status


def test_three_failed_suite_fixes_wait_for_a_human_and_keep_main(project: Path, ray_address: str) -> None:
    main_before = git(project, "rev-parse", "main")
    weakened = {"tests/test_shout.py": "from calc.shout import shout\n\n\ndef test_shout():\n    shout()\n"}
    result = run(project, ray_address, [suite_fix(1, '"HELLO, WORLD!"'), suite_fix(2, files=weakened),
                                        suite_fix(3, '"hello"')])
    assert result.returncode != 0
    record, steps = steps_of(project)
    assert record["state"] == "AWAITING_APPROVAL"
    outputs = {name: (status, output) for name, status, output in steps}
    assert [outputs[f][1]["status"] for f in ("fix", "fix.2", "fix.3")] == ["failed", "refused", "failed"]
    assert "removes 1 assertion" in outputs["fix.2"][1]["detail"]
    assert outputs["test.4"][0] == "failed"
    proof = json.loads((project / ".aigentflow" / "runs" / record["id"] / "evidence.json").read_text())
    assert "after 3 fix attempt(s)" in proof["reason"]
    assert [a["attempt"] for a in proof["fix_attempts"]] == [1, 2, 3]
    assert [c["id"] for c in proof["failing"]] == ["tests.test_shout::test_shout"]
    assert git(project, "rev-parse", "main") == main_before
