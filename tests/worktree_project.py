"""A tiny Python project and replay cassettes for runs that build in worktrees and merge.

The project (``calc``) tests itself with the standard library (``python3 -m unittest``), so the
sandboxed test command needs nothing installed. Cassettes are written from data here: the analyst
and architect answers come from the shipped demo cassette; the work breakdown and the developers'
and resolver's answers are made for the scenario.
"""

from __future__ import annotations

import json
import subprocess
from importlib import resources
from pathlib import Path
from typing import Any

TEST_COMMAND = "python3 -m unittest discover -s tests -q"
GIT_ENV = {"GIT_AUTHOR_NAME": "dev", "GIT_AUTHOR_EMAIL": "dev@example.com", "GIT_COMMITTER_NAME": "dev",
           "GIT_COMMITTER_EMAIL": "dev@example.com"}
APP = 'def greet():\n    return "hello"\n'


def make_project(root: Path) -> Path:
    import os

    (root / "calc").mkdir(parents=True)
    (root / "tests").mkdir()
    (root / "calc" / "__init__.py").write_text("")
    (root / "calc" / "app.py").write_text(APP)
    (root / "tests" / "__init__.py").write_text("")
    (root / "tests" / "test_app.py").write_text(
        "import unittest\n\nfrom calc.app import greet\n\n\nclass GreetTest(unittest.TestCase):\n"
        "    def test_greet(self):\n        self.assertEqual(greet(), 'hello')\n"
    )
    (root / "README.md").write_text("# calc\n\nA tiny project for aigentflow's tests.\n")
    env = {**os.environ, **GIT_ENV}
    for args in (["init", "-q", "-b", "main"], ["add", "."], ["commit", "-qm", "calc: greet"]):
        subprocess.run(["git", *args], cwd=root, check=True, env=env, capture_output=True)
    from aigentflow.cli.project_cmd import initialise

    initialise(root)
    return root


def _demo_entry(role: str) -> dict[str, Any]:
    demo = json.loads((resources.files("aigentflow") / "cassettes" / "demo.json").read_text())
    entry = next(e for e in demo["entries"] if e["role"] == role)
    return {"role": role, "step": entry["step"], "attempt": 1, "response": entry["response"]}


def task(task_id: str, title: str, depends_on: list[str] | None = None) -> dict[str, Any]:
    return {"id": task_id, "title": title, "description": f"{title}, with a unit test.", "type": "backend",
            "depends_on": depends_on or [], "acceptance_criteria": [f"{title} works and is tested"],
            "estimate_hours": 1}


def developer(task_id: str, files: dict[str, str], delay_s: float = 0.0, message: str | None = None,
              role: str = "backend_developer") -> dict[str, Any]:
    entry: dict[str, Any] = {"role": role, "step": f"build/{task_id}", "attempt": 1, "response": {
        "summary": f"Implements {task_id}.", "commit_message": message or f"feat: {task_id}",
        "edits": [{"path": path, "content": content} for path, content in files.items()]}}
    if delay_s:
        entry["delay_s"] = delay_s
    return entry


def module_files(i: int, uses: int | None = None) -> dict[str, str]:
    """``calc/mod_<i>.py`` returning i (or, with ``uses``, i plus what mod_<uses> returns) and its test."""
    if uses is None:
        code, expected = f"def value_{i}():\n    return {i}\n", i
    else:
        code = f"from calc.mod_{uses} import value_{uses}\n\n\ndef value_{i}():\n    return {i} + value_{uses}()\n"
        expected = i + uses
    test = (f"import unittest\n\nfrom calc.mod_{i} import value_{i}\n\n\nclass Mod{i}Test(unittest.TestCase):\n"
            f"    def test_value(self):\n        self.assertEqual(value_{i}(), {expected})\n")
    return {f"calc/mod_{i}.py": code, f"tests/test_mod_{i}.py": test}


def cassette(path: Path, tasks: list[dict[str, Any]], entries: list[dict[str, Any]]) -> str:
    """Write a script of replies (a lenient cassette: by agent and step); returns the model name."""
    data = {"version": 1, "model": "replay/test", "match": "lenient", "entries": [
        _demo_entry("analyst"),
        {"role": "project_manager", "step": "plan", "attempt": 1, "response": {"tasks": tasks}},
        _demo_entry("architect"),
        *entries,
    ]}
    path.write_text(json.dumps(data, indent=2))
    return f"replay/{path}"


def eight_tasks(path: Path, count: int = 8) -> str:
    """Eight tasks: T1-T4 and T6-T8 independent, T5 builds on T1 (so it must start from T1's merge)."""
    tasks = [task(f"T{i}", f"value_{i}", ["T1"] if i == 5 else []) for i in range(1, count + 1)]
    entries = [developer(f"T{i}", module_files(i, uses=1 if i == 5 else None)) for i in range(1, count + 1)]
    return cassette(path, tasks, entries)


def worktree_overrides(test_command: str = TEST_COMMAND) -> dict[str, str]:
    """The same as ``worktree_flags``, as config overrides for ``runner.create_run``."""
    flags = worktree_flags()
    pairs = [flags[i + 1].split("=", 1) for i in range(0, len(flags), 2)]
    return {**dict(pairs), "build.test_command": test_command}


def conflicting(path: Path, resolution: str | None, *, claims: bool = True) -> str:
    """T1 and T2 both append to calc/app.py (T2 later), so merging T2 conflicts; ``resolution`` is the
    resolver's app.py (None: the resolver gives up)."""
    one = APP + "\n\ndef one():\n    return 1\n"
    two = APP + "\n\ndef two():\n    return 2\n"
    tests = {n: (f"import unittest\n\nfrom calc.app import {n}\n\n\nclass {n.title()}Test(unittest.TestCase):\n"
                 f"    def test_{n}(self):\n        self.assertEqual({n}(), {v})\n")
             for n, v in (("one", 1), ("two", 2))}
    entries = [
        developer("T1", {"calc/app.py": one, "tests/test_one.py": tests["one"]}),
        developer("T2", {"calc/app.py": two, "tests/test_two.py": tests["two"]}, delay_s=2.0),
        {"role": "merge_resolver", "step": "resolve/T2", "attempt": 1, "response": {
            "resolved": claims and resolution is not None,
            "explanation": "Kept both functions: one() from T1 and two() from T2.",
            "edits": [{"path": "calc/app.py", "content": resolution}] if resolution is not None else []}},
    ]
    return cassette(path, [task("T1", "one"), task("T2", "two")], entries)


def both_functions() -> str:
    return APP + "\n\ndef one():\n    return 1\n\n\ndef two():\n    return 2\n"


def worktree_flags(*extra: str) -> list[str]:
    """`aigentflow run` options turning on building and merging (not the agents later issues add)."""
    sets = ["flags.agents.backendDev=true", "flags.agents.gitAgent=true", "flags.agents.mergeResolver=true",
            "flags.features.gitWorktrees=true", f"build.test_command={TEST_COMMAND}", "build.task_cpus=0.25",
            *extra]
    return [arg for item in sets for arg in ("--set", item)]


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout.strip()


PYTEST_COMMAND = "python3 -m pytest -q"


def written_tests(task_id: str, files: dict[str, str]) -> dict[str, Any]:
    return {"role": "tester", "step": f"test/{task_id}", "attempt": 1, "response": {
        "summary": f"Tests for {task_id}.", "edits": [{"path": p, "content": c} for p, c in files.items()]}}


def fixer(task_id: str, number: int, files: dict[str, str]) -> dict[str, Any]:
    return {"role": "bug_fixer", "step": f"fix/{task_id}/{number}", "attempt": 1, "response": {
        "diagnosis": f"attempt {number}: the value was wrong.", "summary": f"Fix {number} for {task_id}.",
        "commit_message": f"fix: {task_id} attempt {number}",
        "edits": [{"path": p, "content": c} for p, c in files.items()]}}


def value_module(i: int, returns: int) -> dict[str, str]:
    return {f"calc/mod_{i}.py": f"def value_{i}():\n    return {returns}\n"}


def value_test(i: int) -> dict[str, str]:
    return {f"tests/test_mod_{i}.py": f"from calc.mod_{i} import value_{i}\n\n\ndef test_value_{i}():\n"
                                      f"    assert value_{i}() == {i}\n"}


def tdd_flags(*extra: str) -> list[str]:
    """`worktree_flags` plus the Tester and the Bug Fixer, with pytest (JUnit results) as the test command."""
    return worktree_flags("flags.agents.tester=true", "flags.agents.bugFixer=true", "flags.features.tddWorkflow=true",
                          "flags.features.bugFixLoop=true",
                          f"build.test_command={PYTEST_COMMAND}", *extra)


def review(task_id: str, number: int, verdict: str, comments: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"role": "reviewer", "step": f"review/{task_id}/{number}", "attempt": 1, "response": {
        "verdict": verdict, "summary": f"round {number}: {verdict}", "comments": comments or []}}


def rework(task_id: str, number: int, files: dict[str, str]) -> dict[str, Any]:
    entry = developer(task_id, files, message=f"refactor: {task_id} after review {number}")
    entry["step"] = f"build/{task_id}/rework-{number}"
    return entry


def review_flags(*extra: str) -> list[str]:
    return tdd_flags("flags.agents.reviewer=true", "flags.features.codeReview=true", *extra)
