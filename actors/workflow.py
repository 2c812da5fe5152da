"""The build and merge steps: workflows the Orchestrator runs with the Git Agent, agents and Ray tasks.

Build: the work breakdown's tasks whose dependencies are merged start together, each in its own
worktree made from the feature branch's head. For each, the Developer agent's edits (an ObjectRef)
feed a Ray task with declared resources that applies them, runs the project's tests in the sandbox
and, on a node without the repository, commits in a scratch clone and returns a bundle. A task
whose tests pass is merged into the feature branch at once (conflicts predicted first), which is
what lets its dependants start. Overlapping edits of tasks that ran side by side are reported as
soon as the second one returns. A conflict goes to the Merge Conflict Resolver; its proposal is
applied in a scratch worktree and must pass the tests before it is committed. Anything a machine
cannot settle stops the run in AWAITING_APPROVAL with the evidence.

Merge: the feature branch into the integration branch (``git.merge_style``), behind the project's
CI command as a gate (``build.ci_command``), with the same conflict handling.

A retried step (resume, approve) skips what git already holds: merged tasks are not rebuilt, and
worktrees are re-attached.
"""

from __future__ import annotations

import json
import re
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import replace
from pathlib import Path
from typing import Any

from aigentflow.agents import AgentCall, AgentResult
from aigentflow.build import (
    BuildSpec,
    TaskOutcome,
    execute_task,
    limits_from_settings,
    render_build_report,
)
from aigentflow.engine import NEEDS_APPROVAL
from aigentflow.gitops import names
from aigentflow.testresults import failing, passing_in
from aigentflow.tracing.spans import new_span_id, trace_id_for

CONFLICT_MARKERS = ("<<<<<<< ", ">>>>>>> ")
MAX_FIX_ATTEMPTS = 3
"""The Bug Fixer's attempts per task (``features.bugFixLoop``); then a human decides."""
CODE_TASKS = frozenset({"backend", "frontend"})
"""Task types whose tests the Tester writes first."""
MAX_REVIEW_ROUNDS = 2
"""How many times request-changes sends a task back to its developer; then a human decides."""


def implementer(task_type: str, flags: dict[str, Any]) -> str:
    """Who does a task, by its type: the Frontend Developer (if on) front-end work, the Tester (if on) a
    task that is about tests, the Backend Developer everything else."""
    if task_type == "frontend" and flags.get("agents.frontendDev"):
        return "frontend_developer"
    if task_type == "test" and flags.get("agents.tester"):
        return "tester"
    return "backend_developer"


def _coverage_task(worktree: str, test_command: str, configured: str, limits: dict[str, Any],
                   diff_u0: str) -> dict[str, Any]:
    from pathlib import Path

    from aigentflow.coverage_tracking import measure

    return measure(Path(worktree), test_command, configured, limits, diff_u0)


def _compliance_task(worktree: str, root: str, diff: str, settings: dict[str, Any], redactor: Any) -> dict[str, Any]:
    from pathlib import Path

    from aigentflow.compliance import check

    return check(Path(worktree), Path(root), diff, settings, redactor)


def _lint_task(worktree: str, paths: list[str], limits: dict[str, Any]) -> dict[str, Any]:
    from pathlib import Path

    from aigentflow.lint import lint

    return lint(Path(worktree), paths, limits)


def _commit_message(kind: str, step: str, task_id: str, title: str) -> str:
    """The default message of a task step's commit (``step``: test/T1, build/T1, fix/T1/2, build/T1/rework-1)."""
    if kind == "tests":
        return f"test({task_id}): {title}"
    if step.startswith("fix/"):
        return f"fix({task_id}): {title} (attempt {step.rsplit('/', 1)[-1]})"
    if "/rework-" in step:
        return f"refactor({task_id}): {title} (review round {step.rsplit('-', 1)[-1]})"
    return f"feat({task_id}): {title}"


_VOLATILE = (
    (re.compile(r"\b\d+(?:\.\d+)?\s?(?:s|ms|seconds)\b"), "<t>"),  # durations
    (re.compile(r"\b0x[0-9a-fA-F]{6,}\b"), "0x?"),  # object addresses in reprs
    (re.compile(r"(?:/private)?/(?:tmp|var/folders)/[^\s'\")\]]*"), "<tmp>"),  # per-run temporary paths
)


def steady(text: str, worktree: str) -> str:
    """Test output without what changes from run to run (the worktree's path, temporary paths, object
    addresses, durations), so that the same failure gives the same prompt (replayable, cacheable)."""
    text = text.replace(worktree.rstrip("/") + "/", "").replace(worktree, ".")
    for pattern, replacement in _VOLATILE:
        text = pattern.sub(replacement, text)
    return text


def _tail(tests: dict[str, Any] | None, limit: int = 4000) -> str:
    if not tests:
        return ""
    return ((tests.get("stdout") or "") + "\n" + (tests.get("stderr") or ""))[-limit:]


def _build_task(spec: BuildSpec, change: AgentResult | dict[str, Any], git_agent: Any) -> TaskOutcome:
    """The Ray task body: ``change`` arrives resolved (Ray waits for the developer's ObjectRef)."""
    import ray

    node = ray.get_runtime_context().get_node_id()
    if isinstance(change, AgentResult):
        if not change.ok:
            return TaskOutcome(spec.task_id, "error", detail=f"the developer failed: {change.error}", node_id=node)
        change = change.output
    return execute_task(spec, change, node, lambda: ray.get(git_agent.task_bundle.remote(spec.run_id, spec.task_id)))


def withhold_secrets(files: dict[str, str], redactor: Any) -> tuple[dict[str, str], list[str]]:
    """Files safe to put in a prompt, and the paths withheld because they hold what looks like a secret.

    Withheld, not redacted: a model given a redacted file would write the placeholder back."""
    kept = {path: text for path, text in files.items() if redactor.redact_text(text) == text}
    return kept, sorted(set(files) - set(kept))


class _Collector:
    """What the agents of a workflow did, summed into one AgentResult for the engine to record."""

    def __init__(self, role: str) -> None:
        self.result = AgentResult(role=role, output={})
        self._lock = threading.Lock()  # the build's task threads add at once

    def add(self, part: AgentResult) -> None:
        with self._lock:
            self._add(part)

    def _add(self, part: AgentResult) -> None:
        r = self.result
        r.spans += part.spans
        r.calls += part.calls
        r.model_calls += part.model_calls
        r.input_tokens += part.input_tokens
        r.output_tokens += part.output_tokens
        r.cost_usd += part.cost_usd
        r.prompt_hashes += part.prompt_hashes
        r.warnings += part.warnings

    def span(self, call: AgentCall, name: str, kind: str, start_ns: int, end_ns: int, status: str,
             attributes: dict[str, Any], error: str | None = None) -> None:
        with self._lock:
            self.result.spans.append(self._span(call, name, kind, start_ns, end_ns, status, attributes, error))

    @staticmethod
    def _span(call: AgentCall, name: str, kind: str, start_ns: int, end_ns: int, status: str,
              attributes: dict[str, Any], error: str | None) -> dict[str, Any]:
        return {
            "span_id": new_span_id(), "trace_id": trace_id_for(call.run_id), "parent_id": call.parent_span_id,
            "run_id": call.run_id, "tenant_id": call.tenant_id, "name": name, "kind": kind, "start_ns": start_ns,
            "end_ns": end_ns, "status": status, "error": error, "attributes": attributes,
        }


class Workflow:
    """Shared by build and merge: the handles, the settings, conflict resolution."""

    def __init__(self, orchestrator: Any, call: AgentCall, role: str) -> None:
        import ray

        self.orch = orchestrator
        self.call = call
        self.run_id = call.run_id
        self.git = orchestrator.git_agent()
        self.me = ray.get_runtime_context().current_actor
        self.settings = call.inputs["settings"]
        self.build = self.settings["build"]
        self.limits = limits_from_settings(self.build)
        self.collector = _Collector(role)
        self.feature = names.feature_branch(self.run_id)
        self.integration = self.settings["git"]["integration_branch"]
        self.conflicts: list[dict[str, Any]] = []
        self._repo_node: str | None = None

    @property
    def repo_node(self) -> str:
        import ray

        if self._repo_node is None:
            self._repo_node = ray.get(self.git.node_id.remote())
        return self._repo_node

    def trailers(self, **extra: str) -> dict[str, str]:
        return {"Aigentflow-Run": self.run_id, **extra}

    def agent_call(self, step: str, inputs: dict[str, Any]) -> AgentCall:
        spent = self.collector.result.model_calls
        budget = None if self.call.budget is None else max(self.call.budget - spent, 0)
        return replace(self.call, step=step, inputs=inputs, budget=budget)

    def without_secrets(self, files: dict[str, str]) -> tuple[dict[str, str], list[str]]:
        return withhold_secrets(files, self.orch.options.redactor)

    def build_task_options(self, *, here: bool = False) -> dict[str, Any]:
        options: dict[str, Any] = {"num_cpus": float(self.build["task_cpus"]), "max_retries": 2}
        if here:
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(self.repo_node, soft=False)
        elif self.build["task_resource"]:
            options["resources"] = {self.build["task_resource"]: 1}
        return options

    def coverage(self, worktree: str, base: str | None, ref: str) -> dict[str, Any]:
        """Tests under coverage in ``worktree``; changed lines are those of ``ref`` since ``base``."""
        import ray

        diff_u0 = ray.get(self.git.diff.remote(base, ref, 2_000_000, 0)) if base else ""
        return ray.get(ray.remote(_coverage_task).options(**self.build_task_options(here=True)).remote(
            worktree, self.build["test_command"], self.build["coverage_command"], self.limits, diff_u0))

    def compliance(self, worktree: str, base: str, ref: str) -> dict[str, Any] | None:
        """The Compliance Agent's findings on what ``ref`` adds since ``base`` (None when it is off)."""
        import ray

        if not self.orch.flags.get("agents.complianceAgent", False):
            return None
        diff = ray.get(self.git.diff.remote(base, ref, 5_000_000, 0))
        return ray.get(ray.remote(_compliance_task).options(**self.build_task_options(here=True)).remote(
            worktree, str(self.orch.paths.root), diff, self.settings["compliance"], self.orch.options.redactor))

    def coverage_on(self, ref: str, label: str) -> dict[str, Any]:
        """Total coverage of ``ref`` in a scratch worktree (the baseline, or the feature after its tasks)."""
        import ray

        scratch = ray.get(self.git.resolution_worktree.remote(self.run_id, label, ref, ref))
        try:
            return self.coverage(scratch["path"], None, ref)
        finally:
            ray.get(self.git.remove_worktree.remote(scratch["path"], scratch["branch"]))

    def run_task(self, spec: BuildSpec, change: Any, *, here: bool = False) -> Any:
        import ray

        return ray.remote(_build_task).options(**self.build_task_options(here=here)).remote(spec, change, self.git)

    def resolve(self, target: str, source: str, label: str, evidence: dict[str, Any]) -> dict[str, Any]:
        """Try the resolver on a conflict; the resolution merges only if its tests pass in a scratch worktree."""
        import ray

        started = time.time_ns()
        record: dict[str, Any] = {"target": target, "source": source, "paths": evidence["conflicted_paths"],
                                  "hunks": evidence["hunks"], "resolution": "escalated"}
        if not self.orch.flags.get("agents.mergeResolver", False):
            record["detail"] = "the Merge Conflict Resolver is off (flag agents.mergeResolver)"
            return self._conflict_done(record, started)
        scratch = ray.get(self.git.resolution_worktree.remote(self.run_id, label, target, source))
        record["scratch_worktree"] = scratch["path"]
        files, withheld = self.without_secrets(scratch["files"])
        if withheld:
            record["detail"] = f"conflicted files hold what looks like a secret, not shown to a model: {withheld}"
            return self._conflict_done(record, started)
        call = self.agent_call(f"resolve/{label}", {"source": source, "target": target, "hunks": evidence["hunks"],
                                                    "files": files})
        result = ray.get(self.orch.agent("merge_resolver").run.remote(call, self.me))
        self.collector.add(result)
        if not result.ok:
            record["detail"] = f"the resolver failed: {result.error}"
            return self._conflict_done(record, started)
        proposal = result.output
        record["resolver_claimed"] = bool(proposal["resolved"])
        record["explanation"] = proposal["explanation"]
        if not proposal["resolved"]:
            record["detail"] = "the resolver could not resolve it"
            return self._conflict_done(record, started)
        spec = BuildSpec(self.run_id, f"resolve-{label}", f"resolve {source} into {target}", scratch["path"],
                         scratch["branch"], "", self.repo_node, self.build["test_command"], self.limits,
                         bool(self.build["network"]))
        outcome: TaskOutcome = ray.get(self.run_task(spec, {"edits": proposal["edits"]}, here=True))
        markers = _markers_left(scratch["path"], scratch["conflicted"])
        record["tests"] = outcome.tests
        if markers:
            record["detail"] = f"conflict markers remain in {', '.join(markers)}"
        elif not outcome.ok:
            record["detail"] = f"the resolution does not pass the tests: {outcome.detail}"
        else:
            commit = ray.get(self.git.commit_resolution.remote(
                scratch["path"], f"Merge {source} into {target} (conflicts resolved by the merge resolver)",
                self.trailers(**{"Aigentflow-Agent": "merge_resolver"}), outcome.changed))
            merged = ray.get(self.git.merge.remote(target, scratch["branch"], "", {}, "ff"))
            if "conflict" in merged:  # the target moved meanwhile: let a human look
                record["detail"] = f"{target} moved while the resolution was tested"
            else:
                record.update(resolution="resolved", commit=commit, detail=outcome.detail)
                ray.get(self.git.remove_worktree.remote(scratch["path"], scratch["branch"]))
        return self._conflict_done(record, started)

    def _conflict_done(self, record: dict[str, Any], started: int) -> dict[str, Any]:
        self.conflicts.append(record)
        self.collector.span(self.call, f"resolve_conflict {record['source']}", "merge", started, time.time_ns(),
                            "ok" if record["resolution"] == "resolved" else "error",
                            {"aigentflow.merge.target": record["target"], "aigentflow.merge.source": record["source"],
                             "aigentflow.merge.paths": ",".join(record["paths"]),
                             "aigentflow.merge.resolution": record["resolution"]}, record.get("detail"))
        return record

    def needs_approval(self, reason: str, output: dict[str, Any], files: dict[str, str]) -> AgentResult:
        result = self.collector.result
        result.output = output
        result.files = {**files, "evidence.json": json.dumps({"reason": reason, **output}, indent=2, default=str)}
        result.error, result.error_kind = reason, NEEDS_APPROVAL
        return result


class BuildWorkflow(Workflow):
    def __init__(self, orchestrator: Any, call: AgentCall) -> None:
        super().__init__(orchestrator, call, "developer")
        from actors.project_manager import WorkBreakdown, topological_order

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

    def run(self) -> AgentResult:
        import ray

        if not self.integration:
            raise ValueError("git.integration_branch is not set; `aigentflow config set git.integration_branch main`")
        feature = ray.get(self.git.prepare_feature.remote(self.run_id, self.integration))
        self.feature = feature["branch"]
        if self.orch.flags.get("features.coverageTracking", False):
            self.baseline = self.coverage_on(self.integration, "baseline")
        for task_id in self.order:  # a retried step: what git holds is done
            state = ray.get(self.git.task_state.remote(self.run_id, task_id))
            if state["merged"]:
                self.outcomes[task_id] = {"task_id": task_id, "status": "passed", "merged": True,
                                          "commit": state["commit"], "detail": "merged before this attempt"}
                self.merged_at[task_id] = 0.0
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
        attempts: list[dict[str, Any]] = []
        record["fix_attempts"] = attempts
        while outcome.status == "failed" and flags.get("agents.bugFixer", False) and \
                flags.get("features.bugFixLoop", False) and len(attempts) < MAX_FIX_ATTEMPTS:
            number = len(attempts) + 1
            results = (outcome.tests or {}).get("results") or {}
            # Structured results when the runner wrote them (the failing cases and their assertion lines);
            # the output's tail only when it did not. Either way without what varies from run to run.
            failing_tests = [{**case, "message": steady(case["message"].splitlines()[0] if case["message"] else "",
                                                        worktree["path"])} for case in failing(results)]
            output_tail = "" if results.get("source") == "junit" else steady(_tail(outcome.tests), worktree["path"])
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
            threshold = float(self.build["coverage_threshold"])
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
        lint_result = ray.get(ray.remote(_lint_task).options(**self.build_task_options(here=True)).remote(
            worktree["path"], changed, self.limits))
        diff = ray.get(self.git.diff.remote(self.feature, branch))
        call = self.agent_call(f"review/{task_id}/{round_number}", {
            "task": self.tasks[task_id].model_dump(mode="json"), "diff": diff, "lint": lint_result["findings"]})
        result: AgentResult = ray.get(self.orch.agent("reviewer").run.remote(call, self.me))
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
        self.collector.span(self.call, f"build_task {record['task_id']}", "task", record["started_ns"],
                            record["ended_ns"], "error" if stop else "ok",
                            {"aigentflow.task.id": record["task_id"], "aigentflow.task.status": record["status"],
                             "aigentflow.task.remote": bool(record.get("remote")),
                             "aigentflow.task.fix_attempts": len(record.get("fix_attempts", [])),
                             "aigentflow.sandbox.isolation": json.dumps((record.get("tests") or {}).get("isolation", {}))},
                            stop[:500] if stop else None)
        return stop

    def _step(self, task_id: str, worktree: dict[str, Any], role: str, step: str, kind: str,
              extra: dict[str, Any], record: dict[str, Any]) -> TaskOutcome:
        """One agent's edits for a task, applied and tested in its worktree (or a clone), then committed."""
        import ray

        task = self.tasks[task_id]
        head = ray.get(self.git.head.remote(worktree["branch"]))
        files, withheld = self.without_secrets(ray.get(self.git.snapshot.remote(worktree["path"])))
        call = self.agent_call(step, {"task": task.model_dump(mode="json"), "files": files, "withheld": withheld,
                                      "architecture": self.call.inputs.get("architecture"), **extra})
        change_ref = self.orch.agent(role).run.remote(call, self.me)
        trailers = self.trailers(**{"Aigentflow-Task": task_id, "Aigentflow-Agent": role})
        spec = BuildSpec(self.run_id, task_id, task.title, worktree["path"], worktree["branch"], head, self.repo_node,
                         self.build["test_command"], self.limits, bool(self.build["network"]), trailers=trailers,
                         force_remote=self.orch.options.test_force_remote_build, kind=kind,
                         commit_message=_commit_message(kind, step, task_id, task.title))
        outcome: TaskOutcome = ray.get(self.run_task(spec, change_ref))
        change: AgentResult = ray.get(change_ref)
        self.collector.add(change)
        if change.ok and kind != "tests" and change.output.get("commit_message"):
            spec = replace(spec, commit_message=change.output["commit_message"])
        if outcome.status not in ("refused", "error"):
            if outcome.remote and outcome.bundle:
                ray.get(self.git.accept_bundle.remote(self.run_id, task_id, outcome.bundle, worktree["path"]))
            elif not outcome.remote:
                ray.get(self.git.commit_task.remote(worktree["path"], spec.commit_message, trailers, outcome.changed))
        if change.ok and not outcome.detail:
            outcome.detail = change.output.get("summary", "")
        record["steps"].append({"role": role, "step": step, "status": outcome.status, "detail": outcome.detail,
                                "changed": outcome.changed, "results": (outcome.tests or {}).get("results"),
                                "duration_s": (outcome.tests or {}).get("duration_s")})
        return outcome

    def _tdd_check(self, red: TaskOutcome) -> dict[str, Any]:
        """Tests written first must fail before the implementation; new tests that already pass are flagged."""
        results = (red.tests or {}).get("results")
        written = set(red.changed)
        if results and results.get("source") == "junit":
            early = passing_in(results, written)
        else:  # no per-test report: a suite that passes with the new tests means they test nothing new
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
                  "test_command": self.build["test_command"], "coverage_baseline": self.baseline}
        report = render_build_report(self.run_id, self.feature, self.outcomes, self.conflicts, self.overlaps)
        if stop or missing:
            reason = stop or f"tasks {', '.join(missing)} were not built"
            if missing and stop:
                reason += f"; not built or not merged: {', '.join(missing)}"
            return self.needs_approval(reason, output, {"build_report.md": report})
        result = self.collector.result
        result.output, result.files = output, {"build_report.md": report}
        return result


class AnalyzeWorkflow(Workflow):
    """ANALYZING with the Project Analyzer: the measured analysis and baseline, its summary, then the
    Analyst (who gets the analysis too). The analysis rides on the analyze step's output (``project``),
    from where the engine adds it to every later agent's project context."""

    def __init__(self, orchestrator: Any, call: AgentCall) -> None:
        super().__init__(orchestrator, call, "analyst")

    def run(self) -> AgentResult:
        import ray

        from actors.project_analyzer import render_analysis
        from aigentflow.coverage_tracking import coverage_commands

        facts = self.call.inputs.get("facts") or {}
        command = self.build["test_command"]
        if self.build["coverage_command"]:
            method = f"`{self.build['coverage_command']}` (build.coverage_command)"
        elif command and coverage_commands(command, "", Path("/")):
            method = f"coverage.py around `{command}`"
        else:
            method = "not measurable: set build.coverage_command"
        baseline = self.coverage_on(self.integration, "analysis") if command else {}
        analysis = {"facts": facts, "test_command": command or None, "coverage_method": method,
                    "baseline": {"tests_ok": baseline.get("tests_ok"), "total_percent": baseline.get("total_percent"),
                                 "detail": baseline.get("detail")} if baseline else {}}
        summary_call = self.agent_call("analyze/project", {"analysis": analysis,
                                                           "snapshot": self.call.inputs.get("snapshot")})
        summary = ray.get(self.orch.agent("project_analyzer").run.remote(summary_call, self.me))
        self.collector.add(summary)
        if not summary.ok:
            result = self.collector.result
            result.error, result.error_kind = f"the project analyzer failed: {summary.error}", summary.error_kind
            return result
        analysis["summary"] = summary.output
        analysis["context"] = render_analysis(analysis, summary.output)
        analyst_call = replace(self.call, inputs={**self.call.inputs, "analysis": analysis},
                               project_context=self.call.project_context + analysis["context"])
        research = ray.get(self.orch.agent("analyst").run.remote(analyst_call, self.me))
        self.collector.add(research)
        result = self.collector.result
        if not research.ok:
            result.error, result.error_kind = research.error, research.error_kind
            return result
        result.output = {**research.output, "project": analysis}
        result.files = {**research.files, "project_analysis.md": "# " + analysis["context"].lstrip("# ")}
        return result


class TestingWorkflow(Workflow):
    """TESTING: the project's whole test suite on the feature branch's head, after every task merged
    (tasks passed alone; together they may not). A failure stops for a human with the results."""

    __test__ = False  # not a pytest test class

    def __init__(self, orchestrator: Any, call: AgentCall) -> None:
        super().__init__(orchestrator, call, "tester")

    def run(self) -> AgentResult:
        import ray

        started = time.time_ns()
        command = self.build["test_command"]
        output: dict[str, Any] = {"feature_branch": self.feature, "command": command}
        if not command:
            output.update(ok=True, summary="no test command configured: nothing to run")
        else:
            scratch = ray.get(self.git.resolution_worktree.remote(self.run_id, "test", self.feature, self.feature))
            try:
                spec = BuildSpec(self.run_id, "suite", "the whole test suite", scratch["path"], scratch["branch"], "",
                                 self.repo_node, command, self.limits, bool(self.build["network"]))
                outcome: TaskOutcome = ray.get(self.run_task(spec, {"edits": []}, here=True))
            finally:
                ray.get(self.git.remove_worktree.remote(scratch["path"], scratch["branch"]))
            output.update(ok=outcome.ok, summary=outcome.detail, tests=outcome.tests,
                          results=(outcome.tests or {}).get("results"))
            if outcome.ok and self.orch.flags.get("features.coverageTracking", False):
                baseline = (self.call.inputs.get("build") or {}).get("coverage_baseline") or {}
                after = self.coverage_on(self.feature, "coverage")
                before_pct, after_pct = baseline.get("total_percent"), after.get("total_percent")
                output["coverage"] = {"before": before_pct, "after": after_pct, "measured": after.get("measured"),
                                      "delta": round(after_pct - before_pct, 2)
                                      if before_pct is not None and after_pct is not None else None}
        self.collector.span(self.call, f"test_suite {self.feature}", "task", started, time.time_ns(),
                            "ok" if output["ok"] else "error", {"aigentflow.test.command": command})
        report = f"# Tests of `{self.feature}`\n\n`{command}`: {output['summary']}\n"
        if not output["ok"]:
            return self.needs_approval(f"the test suite fails on {self.feature}: {output['summary']}", output,
                                       {"test_report.md": report})
        result = self.collector.result
        result.output, result.files = output, {"test_report.md": report}
        return result


class ReviewWorkflow(Workflow):
    """REVIEWING: the feature as a whole, before it merges: the linters on everything it changed (tasks
    were reviewed one by one in BUILDING; merged together they may still break a rule), and the tasks'
    verdicts. Findings stop for a human with them as evidence."""

    def __init__(self, orchestrator: Any, call: AgentCall) -> None:
        super().__init__(orchestrator, call, "reviewer")

    def run(self) -> AgentResult:
        import ray

        started = time.time_ns()
        changed = ray.get(self.git.changed_paths.remote(self.integration, self.feature))
        scratch = ray.get(self.git.resolution_worktree.remote(self.run_id, "review", self.feature, self.feature))
        try:
            lint_result = ray.get(ray.remote(_lint_task).options(**self.build_task_options(here=True)).remote(
                scratch["path"], changed, self.limits))
        finally:
            ray.get(self.git.remove_worktree.remote(scratch["path"], scratch["branch"]))
        tasks = (self.call.inputs.get("build") or {}).get("tasks", {})
        verdicts = {t: (r.get("reviews") or [{}])[-1].get("verdict", "not reviewed") for t, r in tasks.items()}
        approved = not lint_result["findings"] and all(v in ("approve", "not reviewed") for v in verdicts.values())
        output = {"feature_branch": self.feature, "changed": changed, "lint": lint_result, "task_verdicts": verdicts,
                  "verdict": "approve" if approved else "request_changes"}
        self.collector.span(self.call, f"review {self.feature}", "task", started, time.time_ns(),
                            "ok" if approved else "error", {"aigentflow.review.verdict": output["verdict"],
                                                            "aigentflow.review.findings": len(lint_result["findings"])})
        lines = [f"# Review of `{self.feature}`\n", f"Verdict: {output['verdict']}\n",
                 *(f"- {t}: {v}" for t, v in sorted(verdicts.items())), "",
                 *(f"- `{f['path']}:{f['line']}` {f['code']}: {f['message']}" for f in lint_result["findings"])]
        report = {"review_report.md": "\n".join(lines) + "\n"}
        if not approved:
            return self.needs_approval(f"the review of {self.feature} requests changes: "
                                       f"{len(lint_result['findings'])} lint finding(s); task verdicts {verdicts}",
                                       output, report)
        result = self.collector.result
        result.output, result.files = output, report
        return result


class MergeWorkflow(Workflow):
    """feature -> integration, behind the CI gate."""

    def __init__(self, orchestrator: Any, call: AgentCall) -> None:
        super().__init__(orchestrator, call, "git_agent")

    def run(self) -> AgentResult:
        import ray

        started = time.time_ns()
        style = self.settings["git"]["merge_style"]
        output: dict[str, Any] = {"feature_branch": self.feature, "integration_branch": self.integration,
                                  "style": style, "conflicts": self.conflicts}
        findings = self.compliance(str(self.orch.paths.root), self.integration, self.feature)
        if findings is not None:
            output["compliance"] = findings
            if findings["blocking"]:
                details = "; ".join(f["detail"] for f in findings["findings"] if f["blocking"])
                return self.needs_approval(f"the Compliance Agent blocks the merge: {details[:500]}", output,
                                           {"merge_report.md": _merge_report(output)})
        gate_command = self.build["ci_command"]
        if gate_command:
            gate = self._gate(gate_command)
            output["gate"] = gate
            if not gate["ok"]:
                return self.needs_approval(f"the CI gate `{gate_command}` fails on the merged result: "
                                           f"{gate['summary']}", output, {"merge_report.md": _merge_report(output)})
        message = f"Merge {self.feature}: {self.call.request.splitlines()[0][:80]}"
        merged = ray.get(self.git.merge.remote(self.integration, self.feature, message,
                                               self.trailers(**{"Aigentflow-Agent": "git_agent"}), style))
        if "conflict" in merged:
            resolution = self.resolve(self.integration, self.feature, "integration", merged["conflict"])
            if resolution["resolution"] != "resolved":
                return self.needs_approval(
                    f"merging {self.feature} into {self.integration} conflicts in {', '.join(resolution['paths'])}: "
                    f"{resolution.get('detail', '')}", output, {"merge_report.md": _merge_report(output)})
            merged = {"target": self.integration, "kind": "merge", "new": resolution["commit"]}
        output["merge"] = merged
        self.collector.span(self.call, f"merge {self.feature}", "merge", started, time.time_ns(), "ok",
                            {"aigentflow.merge.target": self.integration, "aigentflow.merge.source": self.feature,
                             "aigentflow.merge.kind": merged.get("kind", "")})
        result = self.collector.result
        result.output, result.files = output, {"merge_report.md": _merge_report(output)}
        return result

    def _gate(self, command: str) -> dict[str, Any]:
        """The project's CI command on the merged result, in a scratch worktree, before the branch moves."""
        import ray

        scratch = ray.get(self.git.resolution_worktree.remote(self.run_id, "gate", self.integration, self.feature))
        try:
            if not scratch["clean"]:
                return {"ok": False, "summary": f"the merge conflicts in {', '.join(scratch['conflicted'])}",
                        "command": command}
            spec = BuildSpec(self.run_id, "gate", "CI gate", scratch["path"], scratch["branch"], "", self.repo_node,
                             command, self.limits, bool(self.build["network"]))
            outcome: TaskOutcome = ray.get(self.run_task(spec, {"edits": []}, here=True))
            return {**(outcome.tests or {}), "ok": outcome.ok, "summary": outcome.detail, "command": command}
        finally:
            ray.get(self.git.remove_worktree.remote(scratch["path"], scratch["branch"]))


def _merge_report(output: dict[str, Any]) -> str:
    lines = [f"# Merge of `{output['feature_branch']}` into `{output['integration_branch']}`\n",
             f"Style: {output['style']}\n"]
    if "gate" in output:
        lines.append(f"CI gate `{output['gate'].get('command')}`: {output['gate'].get('summary')}\n")
    if "merge" in output:
        merge = output["merge"]
        lines.append(f"Result: {merge.get('kind')} -> {str(merge.get('new', ''))[:10]}\n")
    for c in output["conflicts"]:
        lines.append(f"Conflict in {', '.join(c['paths'])}: {c['resolution']} {c.get('detail', '')}\n")
    return "\n".join(lines)


def _markers_left(root: str, paths: list[str]) -> list[str]:
    from pathlib import Path

    left = []
    for rel in paths:
        path = Path(root) / rel
        if path.is_file() and any(line.startswith(CONFLICT_MARKERS) for line in
                                  path.read_text(errors="replace").splitlines()):
            left.append(rel)
    return left
