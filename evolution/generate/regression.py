"""Auto-generated regression tests for a candidate: cases from the role's past work, run in the sandbox.

A case is one earlier call of the role on a task (the build step of a finished run): the task, the
repository as the role found it (the parent of the commit its edits made, tests written first included),
the project's test command, and the incumbent's outcome there (accepted, or failed: a case of the
finding). The run store gives the task's steps, git their commits (each step that changed files made one).

- the incumbent: its recorded edits (that step's commit) applied to the case's tree and its test
  command run in the sandbox (``aigentflow.checks.build.run_in_sandbox``): its outcome, replayed;
- the candidate: the role's own agent class (``AgentSpec.implementation``) called in this process on the
  case with the candidate's prompt layer, its edits applied through the edit guard, the same command run.

The candidate passes when it regresses no case the incumbent passed and fixes at least one it failed.
``CaseRunner`` is also what the optimizer's metric runs proposals with (``program.grade``). No Ray. The
candidate's role calls go to the generation's model (the replay cassette offline)."""

from __future__ import annotations

import subprocess
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path
from typing import Any

MAX_CASES = 6
MAX_FILE_BYTES = 20_000
TEST_TIMEOUT_S = 120.0


def _git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise LookupError(f"git {' '.join(args)}: {done.stderr.strip()[:200]}")
    return done.stdout


def build_cases(paths: Any, role: str, tenant: str = "default") -> list[dict[str, Any]]:
    """The role's build calls in the finished runs of the project's ``tenant`` (failed ones first), as
    regression cases."""
    from aigentflow.store.sqlite import SQLiteRunStore

    if not paths.database.exists():
        return []
    store = SQLiteRunStore(paths.database)
    try:
        runs = [(run, store.steps(run.id, tenant_id=tenant)) for run in store.list_runs(limit=20, tenant_id=tenant)]
    finally:
        store.close()
    cases = []
    for run, steps in runs:
        outputs = {s.step: s.output for s in steps if s.status == "completed" and s.output}
        build, plan = outputs.get("build") or {}, outputs.get("plan") or {}
        tasks = {t["id"]: t for t in plan.get("tasks", [])}
        for task_id, record in sorted((build.get("tasks") or {}).items()):
            cases += _task_cases(paths.root, run, role, task_id, record, tasks.get(task_id), build, outputs)
    cases.sort(key=lambda c: (c["incumbent"] != "failed", c["id"]))
    return cases[:MAX_CASES]


def _task_cases(root: Path, run: Any, role: str, task_id: str, record: dict[str, Any], task: dict[str, Any] | None,
                build: dict[str, Any], outputs: dict[str, Any]) -> list[dict[str, Any]]:
    committed = [s for s in record.get("steps", []) if s.get("changed")]
    if task is None or not record.get("commit") or not committed:
        return []
    try:
        commits = _git(root, "rev-list", "--first-parent", f"--max-count={len(committed)}",
                       record["commit"]).split()[::-1]
    except LookupError:
        return []
    found = []
    for step, commit in zip(committed, commits, strict=False):
        if step.get("role") != role:
            continue
        changed = sorted(_git(root, "diff-tree", "--no-commit-id", "--name-only", "-r", commit).split())
        if changed != sorted(step["changed"]):
            continue  # the commits do not line up with the steps: not a case we can rebuild
        found.append({
            "id": f"{run.id}/{step['step']}", "run_id": run.id, "step": step["step"], "task_id": task_id,
            "base": f"{commit}^", "incumbent_commit": commit, "accepted_commit": record["commit"], "files": changed,
            "incumbent": "accepted" if step.get("status") == "passed" else "failed",
            "detail": str(step.get("detail", ""))[:200], "test_command": build.get("test_command"),
            "request": run.request, "task": task, "architecture": outputs.get("architect"),
            "tests": list((record.get("tdd") or {}).get("tests_written") or [])})
    return [c for c in found if c["test_command"]]


def _materialize(root: Path, revision: str, target: Path) -> Path:
    archive = subprocess.run(["git", "archive", "--format=tar", revision], cwd=root, capture_output=True, check=True)
    with tarfile.open(fileobj=BytesIO(archive.stdout)) as tar:
        tar.extractall(target, filter="data")
    return target


def tree_files(tree: Path) -> dict[str, str]:
    """The small text files of a tree, as the role is shown them."""
    files = {}
    for path in sorted(tree.rglob("*")):
        if path.is_file() and path.stat().st_size <= MAX_FILE_BYTES:
            try:
                files[path.relative_to(tree).as_posix()] = path.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                continue
    return files


def _run_tests(tree: Path, command: str, limits: dict[str, Any]) -> dict[str, Any]:
    from aigentflow.checks.build import run_in_sandbox

    record = run_in_sandbox(tree, command, {"timeout_s": TEST_TIMEOUT_S, **limits})
    results = record.get("results") or {}
    failing = [c["id"] for c in results.get("cases", []) if c.get("outcome") not in ("passed", "skipped")]
    return {"passed": bool(record.get("ok")), "exit_code": record.get("exit_code"),
            "tests": {k: results.get(k) for k in ("passed", "failed", "total") if k in results},
            "failing": failing[:10], "isolation": (record.get("isolation") or {}).get("filesystem")}


def share_passed(result: dict[str, Any]) -> float:
    """A run's score: the share of the project's tests passing (0 when the role failed or its edits were
    refused; the exit code alone when no test report was written)."""
    tests = result.get("tests") or {}
    if result.get("error") or not tests.get("total"):
        return 1.0 if result.get("passed") else 0.0
    return round(tests["passed"] / tests["total"], 4)


class CaseRunner:
    """Runs role versions (by their instructions) on the cases, each (instructions, case) once."""

    def __init__(self, paths: Any, cases: list[dict[str, Any]], spec: Any, layers: dict[str, str], model: Any,
                 limits: dict[str, Any], project_context: str) -> None:
        self.paths, self.spec, self.layers, self.model = paths, spec, layers, model
        self.limits, self.project_context = limits, project_context
        self.by_step = {case["step"]: case for case in cases}
        self.cases = cases
        self._runs: dict[tuple[str, str], dict[str, Any]] = {}
        self.model_calls = 0
        self.sandbox_runs = 0

    def run(self, instructions: str, case: dict[str, Any]) -> dict[str, Any]:
        key = (instructions, case["id"])
        if key not in self._runs:
            layers = {**self.layers, self.spec.role_layers[0]: instructions}
            result = run_candidate(self.paths.root, case, self.spec, layers, self.model, self.limits,
                                   self.project_context)
            self.model_calls += int(result.get("model_calls", 0))
            self.sandbox_runs += 0 if result.get("error") else 1
            self._runs[key] = result
        return self._runs[key]


def run_incumbent(root: Path, case: dict[str, Any], limits: dict[str, Any]) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="af-regress-") as scratch:
        tree = _materialize(root, case["base"], Path(scratch) / "repo")
        for path in case["files"]:
            try:
                content = _git(root, "show", f"{case['incumbent_commit']}:{path}")
            except LookupError:
                (tree / path).unlink(missing_ok=True)  # the step deleted it
                continue
            (tree / path).parent.mkdir(parents=True, exist_ok=True)
            (tree / path).write_text(content, encoding="utf-8")
        return _run_tests(tree, case["test_command"], limits)


def agent_call(case: dict[str, Any], spec: Any, layers: dict[str, str], model: Any, files: dict[str, str],
               project_context: str) -> Any:
    from aigentflow.run.protocol import AgentCall

    return AgentCall(
        run_id=f"evolve-{case['run_id']}", step=case["step"], attempt=1, request=case["request"],
        project_context=project_context, layers=layers, model=model, agent_name=spec.name,
        agent_version=spec.version, prompt_layers=spec.role_layers, budget=spec.budget,
        inputs={"task": case["task"], "architecture": case["architecture"], "files": files, "tests": case["tests"]})


def run_candidate(root: Path, case: dict[str, Any], spec: Any, layers: dict[str, str], model: Any,
                  limits: dict[str, Any], project_context: str) -> dict[str, Any]:
    from actors import load_class
    from aigentflow.checks.build import check_edits
    from aigentflow.checks.edits import EditRefused, FileEdit, apply_edits

    with tempfile.TemporaryDirectory(prefix="af-regress-") as scratch:
        tree = _materialize(root, case["base"], Path(scratch) / "repo")
        result = load_class(spec.implementation)().run(
            agent_call(case, spec, layers, model, tree_files(tree), project_context), None)
        if not result.ok:
            from aigentflow.models.cassette import MISS_MARKER

            if MISS_MARKER in (result.error or ""):
                raise LookupError(result.error)  # the replay has no answer: say so, never a plain failure
            return {"passed": False, "error": result.error, "model_calls": result.model_calls}
        edits = [FileEdit.model_validate(e) for e in result.output.get("edits", [])]
        try:
            check_edits(tree, "code", edits)
            apply_edits(tree, edits)
        except (EditRefused, ValueError) as exc:
            return {"passed": False, "error": f"edits refused: {exc}", "model_calls": result.model_calls}
        return {**_run_tests(tree, case["test_command"], limits), "model_calls": result.model_calls,
                "changed": sorted(e.path for e in edits)}


def regression_tests(runner: CaseRunner, instructions: str) -> dict[str, Any]:
    """Run every case against the incumbent and the candidate; the verdict by the pass rule."""
    started = time.monotonic()
    rows = []
    for case in runner.cases:
        incumbent = run_incumbent(runner.paths.root, case, runner.limits)
        candidate = runner.run(instructions, case)
        rows.append({"id": case["id"], "step": case["step"], "from": "finding" if case["incumbent"] == "failed"
                     else "traces", "recorded": case["incumbent"], "incumbent": incumbent, "candidate": candidate})
    regressed = [r["id"] for r in rows if r["incumbent"]["passed"] and not r["candidate"]["passed"]]
    fixed = [r["id"] for r in rows if not r["incumbent"]["passed"] and r["candidate"]["passed"]]
    passed = bool(rows) and not regressed and bool(fixed)
    why = ("no regression cases could be built from the traces" if not rows else
           f"regresses {', '.join(regressed)}" if regressed else
           "fixes no case the incumbent failed" if not fixed else
           f"fixes {', '.join(fixed)} and regresses none of the {sum(r['incumbent']['passed'] for r in rows)} "
           "the incumbent passed")
    return {"passed": passed, "why": why, "cases": rows, "regressed": regressed, "fixed": fixed,
            "seconds": round(time.monotonic() - started, 2)}
