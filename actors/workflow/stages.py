"""The run-level stages around BUILDING: ANALYZING with the Project Analyzer, TESTING (the whole
suite and coverage) and FIXING (the Bug Fixer on what it found), REVIEWING (the whole feature) and
MERGING (feature -> integration)."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from actors.factory import remote_task
from actors.workflow.common import (
    MAX_FIX_ATTEMPTS,
    Workflow,
    _lint_task,
    _merge_report,
    failure_inputs,
)
from aigentflow.checks.build import BuildSpec, TaskOutcome
from aigentflow.run.engine import TESTS_FAILED
from aigentflow.run.protocol import AgentCall, AgentResult
from aigentflow.run.statemachine import round_of


class AnalyzeWorkflow(Workflow):
    """ANALYZING with the Project Analyzer: the measured analysis and baseline, its summary, then the
    Analyst (who gets the analysis too). The analysis rides on the analyze step's output (``project``),
    from where the engine adds it to every later agent's project context."""

    def __init__(self, orchestrator: Any, call: AgentCall) -> None:
        super().__init__(orchestrator, call, "analyst")

    def run(self) -> AgentResult:
        import ray

        from actors.project_analyzer import render_analysis
        from aigentflow.checks.coverage import coverage_method

        facts = self.call.inputs.get("facts") or {}
        command = self.build.test_command
        method = coverage_method(command, self.build.coverage_command)
        baseline = self.coverage_on(self.integration, "analysis") if command else {}
        analysis = {"facts": facts, "test_command": command or None, "coverage_method": method,
                    "baseline": {"tests_ok": baseline.get("tests_ok"), "total_percent": baseline.get("total_percent"),
                                 "detail": baseline.get("detail"), "duration_s": baseline.get("duration_s")}
                    if baseline else {}}
        summary_call = self.agent_call("analyze/project", {"analysis": analysis,
                                                           "snapshot": self.call.inputs.get("snapshot")})
        summary = ray.get(self.orch.ask("project_analyzer", summary_call, self.me))
        self.collector.add(summary)
        if not summary.ok:
            result = self.result
            result.error, result.error_kind = f"the project analyzer failed: {summary.error}", summary.error_kind
            return result
        analysis["summary"] = summary.output
        analysis["context"] = render_analysis(analysis, summary.output)
        analyst_call = replace(self.call, inputs={**self.call.inputs, "analysis": analysis},
                               project_context=self.call.project_context + analysis["context"])
        research = ray.get(self.orch.ask("analyst", analyst_call, self.me))
        self.collector.add(research)
        result = self.result
        if not research.ok:
            result.error, result.error_kind = research.error, research.error_kind
            return result
        result.output = {**research.output, "project": analysis}
        result.files = {**research.files, "project_analysis.md": "# " + analysis["context"].lstrip("# ")}
        return result


class TestingWorkflow(Workflow):
    """TESTING: the project's whole test suite on the feature branch's head, after every task merged
    (tasks passed alone; together they may not). A failure goes to FIXING while the Bug Fixer has rounds
    left (``agents.bugFixer`` + ``features.bugFixLoop``, at most 3), then stops for a human with every
    round's results and fixes as evidence."""

    __test__ = False  # not a pytest test class

    def __init__(self, orchestrator: Any, call: AgentCall) -> None:
        super().__init__(orchestrator, call, "tester")

    def run(self) -> AgentResult:
        import ray

        started = time.time_ns()
        number = round_of(self.call.step)
        command = self.build.test_command
        output: dict[str, Any] = {"feature_branch": self.feature, "command": command, "round": number}
        if not command:
            output.update(ok=True, summary="no test command configured: nothing to run")
        else:
            with self.scratch("test", self.feature) as scratch:
                spec = BuildSpec(self.run_id, "suite", "the whole test suite", scratch["path"], scratch["branch"], "",
                                 self.repo_node, command, self.limits, self.build.network)
                outcome: TaskOutcome = ray.get(self.run_task(spec, {"edits": []}, here=True))
                self.ran(outcome, "test")
                failing_tests, tail = failure_inputs(outcome.tests, scratch["path"]) if not outcome.ok else ([], "")
            output.update(ok=outcome.ok, summary=outcome.detail, tests=outcome.tests,
                          results=(outcome.tests or {}).get("results"), failing=failing_tests, output_tail=tail)
            if outcome.ok and self.orch.flags.get("features.coverageTracking", False):
                baseline = (self.call.inputs.get("build") or {}).get("coverage_baseline") or {}
                after = self.coverage_on(self.feature, "coverage")
                before_pct, after_pct = baseline.get("total_percent"), after.get("total_percent")
                output["coverage"] = {"before": before_pct, "after": after_pct, "measured": after.get("measured"),
                                      "duration_s": after.get("duration_s"),
                                      "delta": round(after_pct - before_pct, 2)
                                      if before_pct is not None and after_pct is not None else None}
        self.collector.span(self.call, f"test_suite {self.feature}", "task", started, time.time_ns(),
                            "ok" if output["ok"] else "error", {"aigentflow.test.command": command,
                                                                "aigentflow.test.round": number})
        fixes = self.call.inputs.get("fix_rounds") or []
        report = f"# Tests of `{self.feature}` (round {number})\n\n`{command}`: {output['summary']}\n" + "".join(
            f"\n- fix attempt {f.get('attempt')}: {f.get('status')}, {'merged' if f.get('merged') else 'not merged'}"
            f" — {f.get('detail', '')}" for f in fixes)
        files = {_round_name("test_report.md", number): report + "\n"}
        result = self.result
        if not output["ok"]:
            flags = self.orch.flags
            if flags.get("agents.bugFixer", False) and flags.get("features.bugFixLoop", False) and \
                    len(fixes) < MAX_FIX_ATTEMPTS:
                result.output, result.files = output, files
                result.error, result.error_kind = f"the test suite fails on {self.feature}: {output['summary']}", \
                    TESTS_FAILED
                return result
            tried = f" after {len(fixes)} fix attempt(s)" if fixes else ""
            return self.needs_approval(f"the test suite fails on {self.feature}{tried}: {output['summary']}",
                                       {**output, "fix_attempts": fixes}, files)
        result.output, result.files = output, files
        return result


class FixWorkflow(Workflow):
    """FIXING: the Bug Fixer repairs what TESTING found on the feature branch, one attempt per round.

    The fix is made on a branch of its own from the feature's head (``.../task/suite-fix-<n>``), applied
    through the edit and test guards (no deleted, skipped or weakened tests), tested in the sandbox, and
    merged into the feature only if the suite passes there; TESTING then runs again on the feature."""

    def __init__(self, orchestrator: Any, call: AgentCall) -> None:
        super().__init__(orchestrator, call, "bug_fixer")

    def run(self) -> AgentResult:
        import ray

        started = time.time_ns()
        number = round_of(self.call.step)
        last = (self.call.inputs.get("test_rounds") or [{}])[-1]
        earlier = [{k: f.get(k) for k in ("attempt", "status", "detail")}
                   for f in self.call.inputs.get("fix_rounds") or []]
        command = self.build.test_command
        task = {"id": "suite", "type": "backend", "title": "Make the whole test suite pass on the feature branch",
                "description": f"Every task passed its own tests, but with all of them merged the project's test suite "
                               f"fails on the feature branch: {last.get('summary', '')}",
                "acceptance_criteria": [f"`{command}` passes", "no test is deleted, skipped or weakened"]}
        worktree = ray.get(self.git.task_worktree.remote(self.run_id, f"suite-fix-{number}"))
        record: dict[str, Any] = {"steps": []}
        outcome = self.edit_step(task, worktree, "bug_fixer", f"fix/suite/{number}", "implement", {
            "attempt": number, "failing": last.get("failing") or [], "output": last.get("output_tail") or "",
            "earlier_attempts": earlier}, record)
        output: dict[str, Any] = {"attempt": number, "status": outcome.status, "detail": outcome.detail,
                                  "branch": worktree["branch"], "changed": outcome.changed, "merged": False,
                                  "results": (outcome.tests or {}).get("results"),
                                  "duration_s": (outcome.tests or {}).get("duration_s")}
        if outcome.status == "passed":
            merged = ray.get(self.git.merge.remote(
                self.feature, worktree["branch"], f"Merge the test suite fix (attempt {number})",
                self.trailers(**{"Aigentflow-Task": "suite", "Aigentflow-Agent": "bug_fixer"}), "merge"))
            if "conflict" in merged:  # nothing else moves the feature during FIXING; a human changed it
                return self.needs_approval(f"the suite fix (attempt {number}) conflicts with {self.feature}",
                                           {**output, "conflict": merged["conflict"]}, {})
            output["merged"] = True
        self.collector.span(self.call, f"fix_suite {self.feature}", "task", started, time.time_ns(),
                            "ok" if output["merged"] else "error",
                            {"aigentflow.fix.attempt": number, "aigentflow.fix.status": outcome.status})
        result = self.result
        result.output = output
        result.files = {_round_name("fix_report.md", number): (
            f"# Test suite fix, attempt {number}\n\nStatus: {outcome.status} "
            f"({'merged into' if output['merged'] else 'not merged into'} `{self.feature}`)\n\n{outcome.detail}\n"
            f"\nChanged: {', '.join(outcome.changed) or 'nothing'}\n")}
        return result


def _round_name(name: str, number: int) -> str:
    """``test_report.md`` for the first round, ``test_report.2.md`` for the second, ..."""
    stem, dot, suffix = name.rpartition(".")
    return name if number == 1 else f"{stem}.{number}{dot}{suffix}"


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
        with self.scratch("review", self.feature) as scratch:
            lint_result = ray.get(remote_task(_lint_task).options(**self.build_task_options(here=True)).remote(
                scratch["path"], changed, self.limits))
            self.ran(lint_result, "lint")
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
        result = self.result
        result.output, result.files = output, report
        return result


class MergeWorkflow(Workflow):
    """feature -> integration, behind the CI gate."""

    def __init__(self, orchestrator: Any, call: AgentCall) -> None:
        super().__init__(orchestrator, call, "git_agent")

    def run(self) -> AgentResult:
        import ray

        started = time.time_ns()
        style = self.settings.git.merge_style
        output: dict[str, Any] = {"feature_branch": self.feature, "integration_branch": self.integration,
                                  "style": style, "conflicts": self.conflicts}
        findings = self.compliance(str(self.orch.paths.root), self.integration, self.feature)
        if findings is not None:
            output["compliance"] = findings
            if findings["blocking"]:
                details = "; ".join(f["detail"] for f in findings["findings"] if f["blocking"])
                return self.needs_approval(f"the Compliance Agent blocks the merge: {details[:500]}", output,
                                           {"merge_report.md": _merge_report(output)})
        gate_command = self.build.ci_command
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
        result = self.result
        result.output, result.files = output, {"merge_report.md": _merge_report(output)}
        return result

    def _gate(self, command: str) -> dict[str, Any]:
        """The project's CI command on the merged result, in a scratch worktree, before the branch moves."""
        import ray

        with self.scratch("gate", self.integration, self.feature) as scratch:
            if not scratch["clean"]:
                return {"ok": False, "summary": f"the merge conflicts in {', '.join(scratch['conflicted'])}",
                        "command": command}
            spec = BuildSpec(self.run_id, "gate", "CI gate", scratch["path"], scratch["branch"], "", self.repo_node,
                             command, self.limits, self.build.network)
            outcome: TaskOutcome = ray.get(self.run_task(spec, {"edits": []}, here=True))
            self.ran(outcome, "gate")
            return {**(outcome.tests or {}), "ok": outcome.ok, "summary": outcome.detail, "command": command}


