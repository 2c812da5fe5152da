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
import time
from dataclasses import replace
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
from aigentflow.tracing.spans import new_span_id, trace_id_for

CONFLICT_MARKERS = ("<<<<<<< ", ">>>>>>> ")


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

    def add(self, part: AgentResult) -> None:
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
        self.result.spans.append({
            "span_id": new_span_id(), "trace_id": trace_id_for(call.run_id), "parent_id": call.parent_span_id,
            "run_id": call.run_id, "tenant_id": call.tenant_id, "name": name, "kind": kind, "start_ns": start_ns,
            "end_ns": end_ns, "status": status, "error": error, "attributes": attributes,
        })


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

    def run(self) -> AgentResult:
        import ray

        if not self.integration:
            raise ValueError("git.integration_branch is not set; `aigentflow config set git.integration_branch main`")
        feature = ray.get(self.git.prepare_feature.remote(self.run_id, self.integration))
        self.feature = feature["branch"]
        for task_id in self.order:  # a retried step: what git holds is done
            state = ray.get(self.git.task_state.remote(self.run_id, task_id))
            if state["merged"]:
                self.outcomes[task_id] = {"task_id": task_id, "status": "passed", "merged": True,
                                          "commit": state["commit"], "detail": "merged before this attempt"}
                self.merged_at[task_id] = 0.0
        in_flight: dict[Any, tuple[str, Any, dict[str, Any]]] = {}
        stop: str | None = None
        while True:
            if stop is None:
                for task_id in self._ready(in_flight):
                    ref, change_ref, worktree = self._launch(task_id)
                    in_flight[ref] = (task_id, change_ref, worktree)
            if not in_flight:
                break
            [ref], _ = ray.wait(list(in_flight), num_returns=1)
            task_id, change_ref, worktree = in_flight.pop(ref)
            stop = self._finish(task_id, ray.get(ref), ray.get(change_ref), worktree) or stop
        return self._result(stop)

    def _ready(self, in_flight: dict[Any, tuple[str, Any, dict[str, Any]]]) -> list[str]:
        running = {v[0] for v in in_flight.values()}
        return [t for t in self.order if t not in self.outcomes and t not in running
                and all(self.outcomes.get(d, {}).get("merged") for d in self.tasks[t].depends_on)]

    def _launch(self, task_id: str) -> tuple[Any, Any, dict[str, Any]]:
        import ray

        task = self.tasks[task_id]
        worktree = ray.get(self.git.task_worktree.remote(self.run_id, task_id))
        files, withheld = self.without_secrets(ray.get(self.git.snapshot.remote(worktree["path"])))
        call = self.agent_call(f"build/{task_id}", {"task": task.model_dump(mode="json"), "files": files,
                                                    "withheld": withheld,
                                                    "architecture": self.call.inputs.get("architecture")})
        change_ref = self.orch.agent("developer").run.remote(call, self.me)
        spec = BuildSpec(
            self.run_id, task_id, task.title, worktree["path"], worktree["branch"], worktree["head"], self.repo_node,
            self.build["test_command"], self.limits, bool(self.build["network"]),
            trailers=self.trailers(**{"Aigentflow-Task": task_id, "Aigentflow-Agent": "developer"}),
            force_remote=self.orch.options.test_force_remote_build,
        )
        self.launched_at[task_id] = time.monotonic()
        return self.run_task(spec, change_ref), change_ref, worktree

    def _finish(self, task_id: str, outcome: TaskOutcome, change: AgentResult, worktree: dict[str, Any]) -> str | None:
        """Record a finished task and merge it; returns why the build must stop for a human, if it must."""
        import ray

        self.collector.add(change)
        if change.ok:
            outcome.detail = outcome.detail or change.output.get("summary", "")
        record = outcome.record()
        record["worktree"] = worktree["path"]
        self.outcomes[task_id] = record
        self.collector.span(self.call, f"build_task {task_id}", "task", outcome.started_ns or time.time_ns(),
                            outcome.ended_ns or time.time_ns(), "ok" if outcome.ok else "error",
                            {"aigentflow.task.id": task_id, "aigentflow.task.status": outcome.status,
                             "aigentflow.task.remote": outcome.remote, "aigentflow.node_id": outcome.node_id,
                             "aigentflow.sandbox.isolation": json.dumps((outcome.tests or {}).get("isolation", {}))},
                            None if outcome.ok else outcome.detail[:500])
        if outcome.status in ("refused", "error"):
            return f"task {task_id} {outcome.status}: {outcome.detail}"
        task = self.tasks[task_id]
        trailers = self.trailers(**{"Aigentflow-Task": task_id, "Aigentflow-Agent": "developer"})
        if outcome.remote and outcome.bundle:
            record["commit"] = ray.get(self.git.accept_bundle.remote(self.run_id, task_id, outcome.bundle,
                                                                     worktree["path"]))
        elif not outcome.remote:
            message = change.output.get("commit_message") if change.ok else None
            record["commit"] = ray.get(self.git.commit_task.remote(worktree["path"], message or
                                                                   f"{task_id}: {task.title}", trailers,
                                                                   outcome.changed))
        if not record["commit"]:  # a retried task whose work was committed by an earlier attempt
            record["commit"] = ray.get(self.git.task_state.remote(self.run_id, task_id))["commit"]
        record["reattached"] = worktree["reattached"]
        changed = ray.get(self.git.changed_paths.remote(self.feature, worktree["branch"]))
        self.changed[task_id] = set(changed)
        self._watch_overlaps(task_id)
        if outcome.status == "failed":  # its work stays committed on its branch, for a human to see
            return f"task {task_id}'s tests fail (its work is on {worktree['branch']}): {outcome.detail}"
        merged = ray.get(self.git.merge.remote(self.feature, worktree["branch"], f"Merge {task_id}: {task.title}",
                                               trailers, "merge"))
        if "conflict" in merged:
            resolution = self.resolve(self.feature, worktree["branch"], task_id, merged["conflict"])
            if resolution["resolution"] != "resolved":
                return (f"merging task {task_id} into {self.feature} conflicts in "
                        f"{', '.join(resolution['paths'])}: {resolution.get('detail', '')}")
        record["merged"] = True
        self.merged_at[task_id] = time.monotonic()
        return None

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
                  "test_command": self.build["test_command"]}
        report = render_build_report(self.run_id, self.feature, self.outcomes, self.conflicts, self.overlaps)
        if stop or missing:
            reason = stop or f"tasks {', '.join(missing)} were not built"
            if missing and stop:
                reason += f"; not built or not merged: {', '.join(missing)}"
            return self.needs_approval(reason, output, {"build_report.md": report})
        result = self.collector.result
        result.output, result.files = output, {"build_report.md": report}
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
