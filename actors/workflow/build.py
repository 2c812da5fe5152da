"""BUILDING: the work breakdown's tasks in parallel worktrees, each through tests first, the
implementation, the fix loop, review, coverage and compliance, then merged into the feature branch."""

from __future__ import annotations

import json
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any

from actors.factory import remote_task
from actors.workflow.common import (
    CODE_TASKS,
    MAX_FIX_ATTEMPTS,
    MAX_REVIEW_ROUNDS,
    Workflow,
    _lint_task,
    failure_inputs,
    implementer,
)
from aigentflow.checks.build import TaskOutcome, render_build_report
from aigentflow.checks.testresults import passing_in
from aigentflow.gitops import names
from aigentflow.project.facts import language_of
from aigentflow.run.protocol import AgentCall, AgentResult
from aigentflow.tracing.spans import TASK_LANGUAGE


class BuildWorkflow(Workflow):
    def __init__(self, orchestrator: Any, call: AgentCall) -> None:
        super().__init__(orchestrator, call, "developer")
        from aigentflow.roles.outputs import WorkBreakdown, topological_order

        self.plan = WorkBreakdown.model_validate(call.inputs["plan"])
        self.order = topological_order(self.plan) or []
        self.tasks = {t.id: t for t in self.plan.tasks}
        self.outcomes: dict[str, dict[str, Any]] = {}
        self.changed: dict[str, set[str]] = {}
        self.launched_at: dict[str, float] = {}
        self.merged_at: dict[str, float] = {}
        self.overlaps: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        """Guards what the task threads share (overlaps, changed paths)."""
        self.merge_lock = threading.Lock()
        """One merge into the feature (and its conflict resolution) at a time."""
        self.baseline: dict[str, Any] | None = None
        self.done_phases: dict[str, int] = {}
        """How many of each task's planned phases (``_phases``) it has finished, for its progress."""

    def run(self) -> AgentResult:
        import ray

        if not self.integration:
            raise ValueError("git.integration_branch is not set; `aigentflow config set git.integration_branch main`")
        feature = ray.get(self.git.prepare_feature.remote(self.run_id, self.integration))
        self.feature = feature["branch"]
        if self.orch.flags.get("features.coverageTracking", False):
            self.baseline = self.coverage_on(self.integration, "baseline")
        # A retried step: what git holds is done (asked for every task at once, one round trip).
        states = ray.get([self.git.task_state.remote(self.run_id, task_id) for task_id in self.order])
        for task_id, state in zip(self.order, states, strict=True):
            if state["merged"]:
                self.outcomes[task_id] = {"task_id": task_id, "status": "passed", "merged": True,
                                          "commit": state["commit"], "detail": "merged before this attempt"}
                self.merged_at[task_id] = 0.0
                self.progress(task_id, "merged", status="merged")
            else:
                self.progress(task_id, "waiting", status="pending")
        running: dict[Future[str | None], str] = {}
        stop: str | None = None
        with ThreadPoolExecutor(max_workers=max(len(self.order), 1), thread_name_prefix="task") as pool:
            while True:
                if stop is None:
                    for task_id in self._ready(set(running.values())):
                        self.launched_at[task_id] = time.monotonic()
                        running[pool.submit(self._pipeline, task_id)] = task_id
                if not running:
                    break
                done, _ = wait(list(running), return_when=FIRST_COMPLETED)
                for future in done:
                    task_id = running.pop(future)
                    try:
                        stop = future.result() or stop
                    except Exception as exc:  # noqa: BLE001 (a crashed step of one task stops the build, recorded)
                        self.outcomes.setdefault(task_id, {"task_id": task_id, "status": "error"})
                        self.outcomes[task_id]["detail"] = f"{type(exc).__name__}: {str(exc)[:1000]}"
                        stop = stop or f"task {task_id} crashed: {type(exc).__name__}: {str(exc)[:500]}"
        return self._result(stop)

    def _phases(self, task_id: str) -> list[str]:
        """The phases a task is planned to go through (a fix attempt or a rework round is part of one)."""
        flags = self.orch.flags
        tdd = flags.get("agents.tester", False) and flags.get("features.tddWorkflow", False)
        review = flags.get("agents.reviewer", False) and flags.get("features.codeReview", False)
        return [*(["tests"] if tdd and self.tasks[task_id].type in CODE_TASKS else []), "implement",
                *(["review"] if review else []), "merge"]

    def progress(self, task_id: str, phase: str, status: str = "running") -> None:
        """Tell whoever follows the run which phase the task is in (``Orchestrator.task_progress``): a
        planned phase reached counts the ones before it done; a task merged has done them all."""
        phases = self._phases(task_id)
        if phase in phases:
            self.done_phases[task_id] = max(self.done_phases.get(task_id, 0), phases.index(phase))
        if status == "merged":
            self.done_phases[task_id] = len(phases)
        self.orch.task_progress({"task": task_id, "title": self.tasks[task_id].title, "phase": phase,
                                 "done": self.done_phases.get(task_id, 0), "total": len(phases), "status": status})

    def _ready(self, running: set[str]) -> list[str]:
        return [t for t in self.order if t not in self.outcomes and t not in running
                and all(self.outcomes.get(d, {}).get("merged") for d in self.tasks[t].depends_on)]

    # -- one task: tests first, implementation, the fix loop, merge --------------------------------

    def _pipeline(self, task_id: str) -> str | None:
        """Carry one task from its worktree to the feature branch; returns why a human must decide, if so."""
        import ray

        task = self.tasks[task_id]
        worktree = ray.get(self.git.task_worktree.remote(self.run_id, task_id))
        record: dict[str, Any] = {"task_id": task_id, "status": "error", "worktree": worktree["path"],
                                  "reattached": worktree["reattached"], "started_ns": time.time_ns(), "steps": []}
        self.outcomes[task_id] = record
        flags = self.orch.flags
        tdd = flags.get("agents.tester", False) and flags.get("features.tddWorkflow", False)
        if tdd and task.type in CODE_TASKS:  # tests first; docs, infra and test tasks have no red phase
            red = self._step(task_id, worktree, "tester", f"test/{task_id}", "tests", {}, record)
            if red.status in ("refused", "error"):
                return self._done(record, f"task {task_id}: the tester's tests were {red.status}: {red.detail}")
            record["tdd"] = self._tdd_check(red)
        role = implementer(task.type, flags)
        screens = [s for s in (self.call.inputs.get("design") or {}).get("screens", []) if s.get("task") == task_id]
        outcome = self._step(task_id, worktree, role, f"build/{task_id}", "tests" if role == "tester" else "implement",
                             {"tests": record.get("tdd", {}).get("tests_written", []),
                              **({"design": screens} if screens else {})}, record)
        language = language_of(outcome.changed)
        if language:
            record["language"] = language
        attempts: list[dict[str, Any]] = []
        record["fix_attempts"] = attempts
        while outcome.status == "failed" and flags.get("agents.bugFixer", False) and \
                flags.get("features.bugFixLoop", False) and len(attempts) < MAX_FIX_ATTEMPTS:
            number = len(attempts) + 1
            failing_tests, output_tail = failure_inputs(outcome.tests, worktree["path"])
            outcome = self._step(task_id, worktree, "bug_fixer", f"fix/{task_id}/{number}", "implement", {
                "attempt": number, "failing": failing_tests, "output": output_tail,
                "earlier_attempts": [{k: a[k] for k in ("attempt", "status", "detail")} for a in attempts]}, record)
            attempts.append({"attempt": number, "status": outcome.status, "detail": outcome.detail,
                             "failing_before": [c["id"] for c in failing_tests], "tests": outcome.tests})
        if outcome.status == "passed":
            outcome, stop = self._review_loop(task_id, worktree, role, outcome, record)
            if stop:
                return self._done(record, stop)
        if outcome.status == "passed" and flags.get("features.coverageTracking", False):
            record["coverage"] = coverage = self.coverage(worktree["path"], self.feature, worktree["branch"])
            threshold = self.build.coverage_threshold
            if coverage["measured"] and coverage["changed_percent"] is not None and \
                    coverage["changed_percent"] < threshold:
                record.update(status="coverage_below", detail=f"changed lines {coverage['changed_percent']}% covered")
                return self._done(record, f"task {task_id}: its changed lines are {coverage['changed_percent']}% "
                                          f"covered, under build.coverage_threshold ({threshold:g}%); uncovered: "
                                          f"{coverage['uncovered']}")
        record.update(status=outcome.status, detail=outcome.detail, tests=outcome.tests, node_id=outcome.node_id,
                      remote=outcome.remote, changed=outcome.changed)
        record["commit"] = ray.get(self.git.task_state.remote(self.run_id, task_id))["commit"]
        with self.lock:
            self.changed[task_id] = set(ray.get(self.git.changed_paths.remote(self.feature, worktree["branch"])))
            self._watch_overlaps(task_id)
        if outcome.status in ("refused", "error"):
            return self._done(record, f"task {task_id} {outcome.status}: {outcome.detail}")
        if outcome.status == "failed":  # its work stays committed on its branch, for a human to see
            tried = f" after {len(attempts)} fix attempt(s)" if attempts else ""
            return self._done(record, f"task {task_id}'s tests fail{tried} (its work is on {worktree['branch']}): "
                                      f"{outcome.detail}")
        findings = self.compliance(worktree["path"], self.feature, worktree["branch"])
        if findings is not None:
            record["compliance"] = findings
            if findings["blocking"]:
                record.update(status="blocked", detail="; ".join(f["detail"] for f in findings["findings"]
                                                                 if f["blocking"])[:500])
                return self._done(record, f"task {task_id}: the Compliance Agent blocks the merge: {record['detail']}")
        self.progress(task_id, "merge")
        with self.merge_lock:
            merged = ray.get(self.git.merge.remote(self.feature, worktree["branch"], f"Merge {task_id}: {task.title}",
                                                   self.trailers(**{"Aigentflow-Task": task_id}), "merge"))
            if "conflict" in merged:
                resolution = self.resolve(self.feature, worktree["branch"], task_id, merged["conflict"])
                if resolution["resolution"] != "resolved":
                    return self._done(record, f"merging task {task_id} into {self.feature} conflicts in "
                                              f"{', '.join(resolution['paths'])}: {resolution.get('detail', '')}")
        record["merged"] = True
        self.merged_at[task_id] = time.monotonic()
        return self._done(record, None)

    def _review_loop(self, task_id: str, worktree: dict[str, Any], role: str, outcome: TaskOutcome,
                     record: dict[str, Any]) -> tuple[TaskOutcome, str | None]:
        """Review until approved; request-changes goes back to the developer at most MAX_REVIEW_ROUNDS times."""
        flags = self.orch.flags
        reviews: list[dict[str, Any]] = []
        record["reviews"] = reviews
        if not (flags.get("agents.reviewer", False) and flags.get("features.codeReview", False)):
            return outcome, None
        for round_number in range(1, MAX_REVIEW_ROUNDS + 2):
            self.progress(task_id, "review")
            review = self._review(task_id, worktree, round_number)
            reviews.append(review)
            if review["verdict"] == "approve":
                return outcome, None
            if round_number > MAX_REVIEW_ROUNDS:
                break
            outcome = self._step(task_id, worktree, role, f"build/{task_id}/rework-{round_number}", "implement",
                                 {"review": review["comments"], "review_summary": review["summary"]}, record)
            if outcome.status != "passed":
                record.update(status=outcome.status, detail=outcome.detail, tests=outcome.tests)
                return outcome, (f"task {task_id}: the rework asked for in review round {round_number} "
                                 f"{outcome.status}: {outcome.detail}")
        record.update(status="changes_requested", detail=reviews[-1]["summary"])
        return outcome, (f"task {task_id}: the reviewer still requests changes after {MAX_REVIEW_ROUNDS} rounds: "
                         f"{reviews[-1]['summary']}")

    def _review(self, task_id: str, worktree: dict[str, Any], round_number: int) -> dict[str, Any]:
        """Lint (deterministic) and the Reviewer's verdict on the task's diff against the feature branch."""
        import ray

        branch = worktree["branch"]
        changed = ray.get(self.git.changed_paths.remote(self.feature, branch))
        lint_result = ray.get(remote_task(_lint_task).options(**self.build_task_options(here=True)).remote(
            worktree["path"], changed, self.limits))
        self.ran(lint_result, "lint", f"review/{task_id}/{round_number}")
        diff = ray.get(self.git.diff.remote(self.feature, branch))
        call = self.agent_call(f"review/{task_id}/{round_number}", {
            "task": self.tasks[task_id].model_dump(mode="json"), "diff": diff, "lint": lint_result["findings"]})
        result: AgentResult = ray.get(self.orch.ask("reviewer", call, self.me))
        self.collector.add(result)
        if not result.ok:
            return {"round": round_number, "verdict": "request_changes", "model_verdict": None, "lint": lint_result,
                    "summary": f"the reviewer failed: {result.error}", "comments": []}
        lint_comments = [{"path": f["path"], "line": f["line"], "body": f"{f['code']}: {f['message']}",
                          "severity": "major"} for f in lint_result["findings"]]
        verdict = "request_changes" if lint_comments else result.output["verdict"]
        return {"round": round_number, "verdict": verdict, "model_verdict": result.output["verdict"],
                "summary": result.output["summary"], "comments": lint_comments + result.output["comments"],
                "lint": lint_result}

    def _done(self, record: dict[str, Any], stop: str | None) -> str | None:
        record["ended_ns"] = time.time_ns()
        self.progress(record["task_id"], "merged" if record.get("merged") else "stopped",
                      status="merged" if record.get("merged") else str(record["status"]))
        self.collector.span(self.call, f"build_task {record['task_id']}", "task", record["started_ns"],
                            record["ended_ns"], "error" if stop else "ok",
                            {"aigentflow.task.id": record["task_id"], "aigentflow.task.status": record["status"],
                             "aigentflow.task.remote": bool(record.get("remote")),
                             "aigentflow.task.fix_attempts": len(record.get("fix_attempts", [])),
                             **({TASK_LANGUAGE: record["language"]} if record.get("language") else {}),
                             "aigentflow.sandbox.isolation":
                                 json.dumps((record.get("tests") or {}).get("isolation", {}))},
                            stop[:500] if stop else None)
        return stop

    def _step(self, task_id: str, worktree: dict[str, Any], role: str, step: str, kind: str,
              extra: dict[str, Any], record: dict[str, Any]) -> TaskOutcome:
        phase = step.split("/")[0]  # test/T1, build/T1, fix/T1/2, build/T1/rework-1
        self.progress(task_id, {"test": "tests", "build": "rework" if "rework" in step else "implement"}.get(
            phase, phase))
        return self.edit_step(self.tasks[task_id].model_dump(mode="json"), worktree, role, step, kind, extra, record)

    def _tdd_check(self, red: TaskOutcome) -> dict[str, Any]:
        """Tests written first must fail before the implementation; new tests that already pass are flagged."""
        results = (red.tests or {}).get("results")
        written = set(red.changed)
        if results and results.get("source") == "junit" and any(c.get("file") for c in results.get("cases", [])):
            early = passing_in(results, written)
        else:  # no per-test report (or one that names no files): a suite that passes with the new tests means
            # they test nothing new
            early = sorted(written) if red.tests and red.tests.get("ok") else []
        return {"tests_written": sorted(written), "failed_first": not (red.tests or {}).get("ok", False),
                "violations": early}

    def _watch_overlaps(self, task_id: str) -> None:
        """Files this task changed that a task running alongside it changed too (before either merged)."""
        import ray

        mine = self.changed[task_id]
        for other, theirs in self.changed.items():
            if other == task_id or self.merged_at.get(other, float("inf")) < self.launched_at[task_id]:
                continue
            for path in sorted(mine & theirs):
                clean = ray.get(self.git.predict.remote(names.task_branch(self.run_id, other),
                                                        names.task_branch(self.run_id, task_id)))["clean"]
                self.overlaps.append({"path": path, "tasks": sorted([other, task_id]), "conflict_predicted": not clean})

    def _result(self, stop: str | None) -> AgentResult:
        missing = [t for t in self.order if not self.outcomes.get(t, {}).get("merged")]
        output = {"feature_branch": self.feature, "integration_branch": self.integration,
                  "tasks": self.outcomes, "conflicts": self.conflicts, "overlaps": self.overlaps,
                  "test_command": self.build.test_command, "coverage_baseline": self.baseline}
        report = render_build_report(self.run_id, self.feature, self.outcomes, self.conflicts, self.overlaps)
        if stop or missing:
            reason = stop or f"tasks {', '.join(missing)} were not built"
            if missing and stop:
                reason += f"; not built or not merged: {', '.join(missing)}"
            return self.needs_approval(reason, output, {"build_report.md": report})
        result = self.result
        result.output, result.files = output, {"build_report.md": report}
        return result


