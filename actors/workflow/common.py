"""What the run-level workflows share: the base class (handles, settings, conflict resolution),
the Ray task bodies (build, lint, coverage, compliance), and small helpers. See ``actors.workflow``."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from actors.factory import remote_task
from actors.workflow.shadow import EditShadows
from aigentflow import faults
from aigentflow.checks.build import (
    BuildSpec,
    TaskOutcome,
    execute_task,
    limits_from_settings,
)
from aigentflow.gitops import names
from aigentflow.run.engine import NEEDS_APPROVAL
from aigentflow.run.protocol import AgentCall, AgentResult, merge_usage
from aigentflow.sandbox.commands import recording
from aigentflow.tracing.spans import command_span, git_span, task_span

if TYPE_CHECKING:
    from aigentflow.config.settings import ComplianceSettings

CONFLICT_MARKERS = ("<<<<<<< ", ">>>>>>> ")
COMMANDS = "commands"
"""The key under which a Ray task's dict result carries its sandboxed commands' trace records (taken out by
``Workflow.ran`` before the result is stored)."""
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
    from aigentflow.checks.coverage import measure

    with recording() as ran:
        return {**measure(Path(worktree), test_command, configured, limits, diff_u0), COMMANDS: ran}


def _compliance_task(worktree: str, root: str, diff: str, settings: ComplianceSettings,
                     redactor: Any) -> dict[str, Any]:
    from aigentflow.checks.compliance import check

    return check(Path(worktree), Path(root), diff, settings, redactor)


def _lint_task(worktree: str, paths: list[str], limits: dict[str, Any]) -> dict[str, Any]:
    from aigentflow.checks.lint import lint

    with recording() as ran:
        return {**lint(Path(worktree), paths, limits), COMMANDS: ran}


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


def failure_inputs(tests: dict[str, Any] | None, worktree: str) -> tuple[list[dict[str, Any]], str]:
    """What the Bug Fixer is given about a failing run: the failing cases with their assertion lines
    when the runner wrote a report, the output's tail only when it did not; either way without what
    varies from run to run (paths, durations), so the same failure gives the same prompt."""
    from aigentflow.checks.testresults import failing

    results = (tests or {}).get("results") or {}
    cases = [{**case, "message": steady(case["message"].splitlines()[0] if case["message"] else "", worktree)}
             for case in failing(results)]
    return cases, "" if results.get("source") == "junit" else steady(_tail(tests), worktree)


def _build_task(spec: BuildSpec, change: AgentResult | dict[str, Any], git_agent: Any) -> TaskOutcome:
    """The Ray task body: ``change`` arrives resolved (Ray waits for the developer's ObjectRef)."""
    import ray

    node = ray.get_runtime_context().get_node_id()
    if isinstance(change, AgentResult):
        if not change.ok:
            return TaskOutcome(spec.task_id, "error", detail=f"the developer failed: {change.error}", node_id=node)
        change = change.output
    with recording() as ran:
        outcome = execute_task(spec, change, node,
                               lambda: ray.get(git_agent.task_bundle.remote(spec.run_id, spec.task_id)))
    outcome.commands = ran
    return outcome


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
        merge_usage(r.by_model, part.by_model)
        r.prompt_hashes += part.prompt_hashes
        r.warnings += part.warnings
        r.skills += part.skills
        r.tool_calls += part.tool_calls

    def span(self, call: AgentCall, name: str, kind: str, start_ns: int, end_ns: int, status: str,
             attributes: dict[str, Any], error: str | None = None) -> None:
        built = task_span(call, name, kind=kind, start_ns=start_ns, end_ns=end_ns, status=status,
                          attributes=attributes, error=error)
        with self._lock:
            self.result.spans.append(built)

    def commands(self, call: AgentCall, ran: list[dict[str, Any]], kind: str, step: str | None) -> None:
        built = [command_span(c, run_id=call.run_id, kind=kind, parent_id=call.parent_span_id,
                              tenant_id=call.tenant_id, step=step) for c in ran]
        with self._lock:
            self.result.spans += built

    def git(self, call: AgentCall, operations: list[dict[str, Any]]) -> None:
        built = [git_span(op, run_id=call.run_id, parent_id=call.parent_span_id, tenant_id=call.tenant_id)
                 for op in operations]
        with self._lock:
            self.result.spans += built


class Workflow:
    """Shared by build and merge: the handles, the settings, conflict resolution."""

    def __init__(self, orchestrator: Any, call: AgentCall, role: str) -> None:
        import ray

        self.orch = orchestrator
        self.call = call
        self.run_id = call.run_id
        self.git = orchestrator.git_agent()
        self.me = ray.get_runtime_context().current_actor
        self.settings = orchestrator.settings
        self.build = orchestrator.build_settings
        self.limits = limits_from_settings(self.build)
        self.collector = _Collector(role)
        self.feature = names.feature_branch(self.run_id)
        self.integration = self.settings.git.integration_branch
        self.conflicts: list[dict[str, Any]] = []
        self._repo_node: str | None = None
        self.shadows = EditShadows(self)
        """The shadows of its edit steps (``actors.workflow.shadow``), joined when the step ends."""

    @property
    def repo_node(self) -> str:
        import ray

        if self._repo_node is None:
            self._repo_node = ray.get(self.git.node_id.remote())
        return self._repo_node

    @property
    def result(self) -> AgentResult:
        """What the workflow did so far, with the Git Agent's operations since it was last asked as spans."""
        import ray

        self.collector.git(self.call, ray.get(self.git.operations.remote()))
        return self.collector.result

    def ran(self, outcome: TaskOutcome | dict[str, Any] | None, kind: str, step: str | None = None) -> None:
        """Trace the sandboxed commands a task ran (test, lint, coverage, gate); a dict result loses them."""
        if isinstance(outcome, TaskOutcome):
            ran = outcome.commands
        else:
            ran = outcome.pop(COMMANDS, []) if outcome else []
        self.collector.commands(self.call, ran, kind, step)

    def trailers(self, **extra: str) -> dict[str, str]:
        return {"Aigentflow-Run": self.run_id, **extra}

    def agent_call(self, step: str, inputs: dict[str, Any]) -> AgentCall:
        done = self.collector.result
        budget = None if self.call.budget is None else max(self.call.budget - done.model_calls, 0)
        quota = None if self.call.quota is None else self.call.quota.after(
            done.input_tokens + done.output_tokens, done.cost_usd)  # the tenant's allowance, what this step spent off
        # Another role's call: its agent's name and version are that role's, not this workflow's.
        return replace(self.call, step=step, inputs=inputs, budget=budget, quota=quota, agent_name="",
                       agent_version="", agent_origin="", prompt_layers=())

    def without_secrets(self, files: dict[str, str]) -> tuple[dict[str, str], list[str]]:
        return withhold_secrets(files, self.orch.options.redactor)

    def build_task_options(self, *, here: bool = False) -> dict[str, Any]:
        options: dict[str, Any] = {"num_cpus": self.build.task_cpus, "max_retries": 2}
        if here:
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(self.repo_node, soft=False)
        elif self.build.task_resource:
            options["resources"] = {self.build.task_resource: 1}
        return options

    def coverage(self, worktree: str, base: str | None, ref: str) -> dict[str, Any]:
        """Tests under coverage in ``worktree``; changed lines are those of ``ref`` since ``base``."""
        import ray

        diff_u0 = ray.get(self.git.diff.remote(base, ref, 2_000_000, 0)) if base else ""
        measured = ray.get(remote_task(_coverage_task).options(**self.build_task_options(here=True)).remote(
            worktree, self.build.test_command, self.build.coverage_command, self.limits, diff_u0))
        self.ran(measured, "coverage")
        return measured

    def compliance(self, worktree: str, base: str, ref: str) -> dict[str, Any] | None:
        """The Compliance Agent's findings on what ``ref`` adds since ``base`` (None when it is off)."""
        import ray

        if not self.orch.flags.get("agents.complianceAgent", False):
            return None
        diff = ray.get(self.git.diff.remote(base, ref, 5_000_000, 0))
        return ray.get(remote_task(_compliance_task).options(**self.build_task_options(here=True)).remote(
            worktree, str(self.orch.paths.root), diff, self.settings.compliance, self.orch.options.redactor))

    @contextmanager
    def scratch(self, label: str, target: str, source: str | None = None) -> Iterator[dict[str, Any]]:
        """A throw-away worktree at ``target`` (with ``source`` merged in, if given), removed afterwards."""
        import ray

        worktree = ray.get(self.git.resolution_worktree.remote(self.run_id, label, target, source))
        try:
            yield worktree
        finally:
            ray.get(self.git.remove_worktree.remote(worktree["path"], worktree["branch"]))

    def edit_step(self, task: dict[str, Any], worktree: dict[str, Any], role: str, step: str, kind: str,
                  extra: dict[str, Any], record: dict[str, Any]) -> TaskOutcome:
        """One agent's edits for a task (a work-breakdown task's fields), applied and tested in its
        worktree (or a clone), then committed on its branch; the step is appended to ``record["steps"]``."""
        import ray

        task_id, title = task["id"], task["title"]
        head, snapshot = ray.get([self.git.head.remote(worktree["branch"]), self.git.snapshot.remote(worktree["path"])])
        files, withheld = self.without_secrets(snapshot)
        if withheld:
            self.orch.record("secret.withheld", {"task": task_id, "step": step, "role": role, "paths": withheld})
        call = self.agent_call(step, {"task": task, "files": files, "withheld": withheld,
                                      "architecture": self.call.inputs.get("architecture"), **extra})
        clock = time.perf_counter()
        change_ref = self.orch.ask(role, call, self.me)
        shadow = self.shadows.start(role, call, head, kind)  # the candidate's edits, if role is shadowed now
        trailers = self.trailers(**{"Aigentflow-Task": task_id, "Aigentflow-Agent": role})
        # A fault point: the task's build acts as if its node lacked the repository (the git-bundle path).
        repo_node = "" if faults.enabled("build.force-remote") else self.repo_node
        spec = BuildSpec(self.run_id, task_id, title, worktree["path"], worktree["branch"], head, repo_node,
                         self.build.test_command, self.limits, self.build.network, trailers=trailers,
                         kind=kind,
                         commit_message=_commit_message(kind, step, task_id, title))
        outcome: TaskOutcome = ray.get(self.run_task(spec, change_ref))
        self.ran(outcome, "test", step)
        change: AgentResult = ray.get(change_ref)
        self.shadows.incumbent(shadow, role, change, outcome, time.perf_counter() - clock)
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
                                "duration_s": (outcome.tests or {}).get("duration_s"),
                                "skills": [p["name"] for p in change.skills], "tool_calls": change.tool_calls})
        return outcome

    def coverage_on(self, ref: str, label: str) -> dict[str, Any]:
        """Total coverage of ``ref`` in a scratch worktree (the baseline, or the feature after its tasks)."""
        with self.scratch(label, ref) as worktree:
            return self.coverage(worktree["path"], None, ref)

    def run_task(self, spec: BuildSpec, change: Any, *, here: bool = False) -> Any:

        return remote_task(_build_task).options(**self.build_task_options(here=here)).remote(spec, change, self.git)

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
            self.orch.record("secret.withheld", {"step": "resolve", "paths": withheld})
            record["detail"] = f"conflicted files hold what looks like a secret, not shown to a model: {withheld}"
            return self._conflict_done(record, started)
        call = self.agent_call(f"resolve/{label}", {"source": source, "target": target, "hunks": evidence["hunks"],
                                                    "files": files})
        result = ray.get(self.orch.ask("merge_resolver", call, self.me))
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
                         scratch["branch"], "", self.repo_node, self.build.test_command, self.limits,
                         self.build.network)
        outcome: TaskOutcome = ray.get(self.run_task(spec, {"edits": proposal["edits"]}, here=True))
        self.ran(outcome, "test", call.step)
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
        result = self.result
        result.output = output
        result.files = {**files, "evidence.json": json.dumps({"reason": reason, **output}, indent=2, default=str)}
        result.error, result.error_kind = reason, NEEDS_APPROVAL
        return result


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

    left = []
    for rel in paths:
        path = Path(root) / rel
        if path.is_file() and any(line.startswith(CONFLICT_MARKERS) for line in
                                  path.read_text(errors="replace").splitlines()):
            left.append(rel)
    return left
