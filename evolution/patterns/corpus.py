"""A generated corpus for measuring the miner: runs written through aigentflow's own ``SQLiteRunStore``
and ``SegmentWriter``, shaped like the engine's (states, agent and model calls, build tasks, tools,
transitions, steps), with planted patterns among noise, and the findings they must yield (``TRUTH``).

Noise: ordinary runs (tasks that pass, sometimes after one fix), one-off errors whose messages differ
in words, not just numbers, retries of a prompt (two calls, not a loop), costs that vary around their
medians, one pause and one wait for a human with their own causes.

``generate(root, runs=60, seed=7)`` returns the ground truth (the planted scenarios' expected findings);
``tenant`` records the runs (store rows and spans) under another tenant, ``scenarios`` plants only some.
"""

from __future__ import annotations

import hashlib
import random
import time
from pathlib import Path
from typing import Any

from aigentflow.store.records import StepUsage
from aigentflow.store.rows import new_run_id
from aigentflow.store.sqlite import SQLiteRunStore
from aigentflow.tracing import spans as sp
from aigentflow.tracing.writer import SegmentWriter

SCENARIOS = ("schema", "frontend_timeouts", "conflicts", "tool_refused", "loops", "cost", "rerouted",
             "extra_fixes", "reviews")
"""Planted patterns; each is planted in about one run in six."""

TRUTH: dict[str, list[dict[str, Any]]] = {
    "schema": [{"kind": "failure", "role": "project_manager", "step_kind": "plan", "message~": "broke the schema"}],
    "frontend_timeouts": [
        {"kind": "failure", "step_kind": "build_task", "error_type": "TimeoutError"},
        {"kind": "intervention", "trigger": "fix_loop_exhausted", "cause": "task tests still fail"},
        {"kind": "intervention", "trigger": "awaiting_approval", "cause": "fix_loop_exhausted"},
        {"kind": "intervention", "trigger": "resumed", "cause": "fix_loop_exhausted"},
        {"kind": "capability_gap", "dimension": "task_type", "task_type": "frontend"},
        {"kind": "capability_gap", "dimension": "language", "language": "TypeScript"},
    ],
    "conflicts": [
        {"kind": "failure", "step_kind": "build_task", "message~": "conflicts in"},
        {"kind": "intervention", "trigger": "awaiting_approval", "cause": "merge_conflict"},
        {"kind": "intervention", "trigger": "resumed", "cause": "merge_conflict"},
    ],
    "tool_refused": [
        {"kind": "capability_gap", "dimension": "tool_refused", "role": "reviewer",
         "tool": "github/create_pull_request"},
        {"kind": "failure", "role": "reviewer", "message~": "allowlist"},
    ],
    "loops": [{"kind": "routing", "pattern": "prompt_loop", "role": "analyst", "step_kind": "analyze"}],
    "cost": [{"kind": "routing", "pattern": "cost_outlier", "role": "architect", "step_kind": "architect"}],
    "rerouted": [
        {"kind": "routing", "pattern": "rerouted", "from_role": "frontend_developer", "to_role": "backend_developer"},
        {"kind": "failure", "role": "frontend_developer", "step_kind": "build", "error_type": "ValueError"},
    ],
    "extra_fixes": [
        {"kind": "routing", "pattern": "extra_fix_rounds", "task_type": "infra"},
        {"kind": "capability_gap", "dimension": "skill_missing", "role": "backend_developer", "skill": "terraform"},
    ],
    "reviews": [{"kind": "intervention", "trigger": "review_rejected", "role": "backend_developer"}],
}

_WORDS = ("alpha", "bravo", "cobalt", "delta", "ember", "fjord", "garnet", "harbor", "indigo", "jasper", "kelp",
          "lumen", "maple", "nectar", "onyx", "pylon", "quartz", "raven", "sierra", "tundra", "umber", "vortex",
          "willow", "xenon", "yarrow", "zephyr")
MODEL = "openai/gpt-4o-mini"
MS = 1_000_000


def matches(finding: dict[str, Any], expected: dict[str, Any]) -> bool:
    """Whether a finding is the one ``expected`` describes (its kind and the details named;
    ``field~`` means the detail contains the text)."""
    if finding["kind"] != expected["kind"]:
        return False
    details = finding["details"]
    for name, value in expected.items():
        if name in ("kind", "scenario"):
            continue
        if name.endswith("~"):
            if value not in str(details.get(name[:-1], "")):
                return False
        elif details.get(name) != value:
            return False
    return True


def score(findings: list[dict[str, Any]], truth: list[dict[str, Any]]) -> dict[str, Any]:
    """Precision and recall: each expected finding is matched by at most one finding; a finding that
    matches nothing (or an expected finding already matched) is a false positive."""
    unmatched = list(truth)
    true_positive, false_positives = 0, []
    for finding in findings:
        hit = next((e for e in unmatched if matches(finding, e)), None)
        if hit is None:
            false_positives.append(finding["title"])
        else:
            unmatched.remove(hit)
            true_positive += 1
    return {"precision": true_positive / len(findings) if findings else 1.0,
            "recall": true_positive / len(truth) if truth else 1.0,
            "true_positives": true_positive, "false_positives": false_positives, "missed": unmatched}


class _Run:
    """One run being written: its store record, its spans, a clock."""

    def __init__(self, gen: Generator, index: int) -> None:
        self.gen, self.rng = gen, gen.rng
        self.store, self.writer = gen.store, gen.writer
        run_id = new_run_id()
        while run_id in gen.run_ids:  # ids are unique only to the second and 4 random hex digits
            run_id = new_run_id()
        gen.run_ids.add(run_id)
        self.run = self.store.create_run(project_id=gen.project, request=f"feature {index}", model=MODEL,
                                         settings={}, flags={}, run_id=run_id, tenant_id=gen.tenant)
        self.id = self.run.id
        self.clock = gen.clock = max(time.time_ns(), gen.clock)  # the store's clock: its rows say "now"
        self.started = self.clock

    def tick(self, ms: int) -> int:
        self.clock += ms * MS
        self.gen.clock = self.clock
        return self.clock

    def move(self, to_state: str, event: str = "ADVANCE", reason: str | None = None) -> None:
        before = self.run.state
        self.run = self.store.transition(self.id, expected_version=self.run.version, to_state=to_state,
                                         return_to=None, event=event, reason=reason)
        self.writer.add(sp.transition_span(self.id, from_state=before, to_state=to_state, reason=reason))

    def agent(self, role: str, step: str, parent: str, *, calls: int = 1, cost: float = 0.002, same_prompt: int = 1,
              error: str | None = None, model_errors: list[str] | None = None,
              withheld: str | None = None) -> str:
        """An agent span and its chat spans; ``same_prompt`` calls share one prompt hash; ``withheld``: the
        skills picked for the task that the role version may not use."""
        span_id, start = sp.new_span_id(), self.tick(5)
        prompt = hashlib.sha256(f"{self.id}{step}{self.rng.random()}".encode()).hexdigest()
        errors = list(model_errors or [])
        for number in range(1, calls + 1):
            failed = errors.pop(0) if errors else None
            digest = prompt if number <= same_prompt else hashlib.sha256(f"{prompt}{number}".encode()).hexdigest()
            self.writer.add(sp.make_span(
                sp.model_span_name(MODEL), "model", run_id=self.id, parent_id=span_id, start_ns=self.tick(1),
                end_ns=self.tick(self.rng.randint(300, 2000)), status="error" if failed else "ok", error=failed,
                attributes={sp.OPERATION_NAME: "chat", sp.REQUEST_MODEL: MODEL, sp.AGENT_NAME: role,
                            sp.AGENT_VERSION: "1.0.0", sp.PROMPT_HASH: f"sha256:{digest}",
                            sp.COST_USD: cost / calls, "aigentflow.attempt": number}))
        self.writer.add(sp.make_span(
            sp.agent_span_name(role), "agent", run_id=self.id, parent_id=parent, span_id=span_id, start_ns=start,
            end_ns=self.tick(3), status="error" if error else "ok", error=error,
            attributes={sp.OPERATION_NAME: "invoke_agent", sp.AGENT_NAME: role, sp.AGENT_VERSION: "1.0.0",
                        "aigentflow.step": step, "aigentflow.attempt": 1, sp.PROMPT_HASH: f"sha256:{prompt}",
                        sp.COST_USD: cost, **({"aigentflow.skills.withheld": withheld} if withheld else {})}))
        return span_id

    def state(self, state: str, role: str, to_state: str, step: str, body: Any, output: dict[str, Any] | None = None,
              wait: str | None = None, retry: Any = None) -> None:
        """A state's step: its span (``body(parent)`` writes what happened inside) and its store rows; with
        ``wait``, the step first stops for a human (AWAITING_APPROVAL) who then approves it."""
        span_id, start = sp.new_span_id(), self.tick(10)
        record = self.store.begin_step(self.id, step, role, state)
        body(span_id)
        if wait:
            self.store.fail_step(record, wait)
            self.writer.add(sp.state_span(self.id, span_id=span_id, from_state=state, to_state="AWAITING_APPROVAL",
                                          start_ns=start, end_ns=self.tick(5), reason=wait, agent=(role, "1.0.0")))
            self.run = self.store.transition(self.id, expected_version=self.run.version, to_state="AWAITING_APPROVAL",
                                             return_to=state, event="AWAIT_APPROVAL", reason=wait)
            self.move(state, "APPROVE")
            record = self.store.begin_step(self.id, step, role, state, new_attempt=True)
            span_id, start = sp.new_span_id(), self.tick(5_000)
            if retry is not None:
                retry(span_id)
        cost = self.rng.uniform(0.001, 0.004)
        self.run = self.store.complete_step(record, output=output or {}, usage=StepUsage(1000, 200, cost, 1),
                                            artifacts=[], expected_version=self.run.version, to_state=to_state)
        self.writer.add(sp.state_span(self.id, span_id=span_id, from_state=state, to_state=to_state, start_ns=start,
                                      end_ns=self.tick(5), agent=(role, "1.0.0")))

    def task(self, parent: str, task_id: str, status: str, fix_attempts: int = 0, error: str | None = None,
             language: str | None = "Python") -> None:
        self.writer.add(sp.make_span(
            f"build_task {task_id}", "task", run_id=self.id, parent_id=parent, start_ns=self.tick(2),
            end_ns=self.tick(self.rng.randint(2000, 9000)), status="error" if error else "ok", error=error,
            attributes={"aigentflow.task.id": task_id, "aigentflow.task.status": status,
                        "aigentflow.task.fix_attempts": fix_attempts,
                        **({"aigentflow.task.language": language} if language else {})}))


_BASE_COST = {"analyze": 0.004, "plan": 0.008, "architect": 0.006, "build": 0.012, "fix": 0.009, "review": 0.005}
_LANGUAGE: dict[str, str | None] = {"frontend": "TypeScript", "docs": None}
"""The language of the files a task of each type changes (``language_of``: Python otherwise; docs are no code)."""
_IMPLEMENTER = {"backend": "backend_developer", "frontend": "frontend_developer", "docs": "backend_developer",
                "test": "tester", "infra": "backend_developer"}


def _latest_span_ns(trace_dir: Path) -> int:
    """When the last span written to the project's segments ended (0 for none)."""
    import duckdb

    from aigentflow.tracing.writer import list_segments

    segments = [str(path) for path in list_segments(trace_dir)]
    if not segments:
        return 0
    with duckdb.connect() as connection:
        return int(connection.execute("SELECT max(end_ns) FROM read_parquet(?)", [segments]).fetchone()[0] or 0)


class _TenantWriter:
    """A ``SegmentWriter`` whose spans are all recorded under one tenant."""

    def __init__(self, writer: SegmentWriter, tenant: str) -> None:
        self.writer, self.tenant = writer, tenant

    def add(self, span: Any) -> None:
        self.writer.add({**span, "tenant_id": self.tenant})

    def extend(self, spans: Any) -> None:
        for span in spans:
            self.add(span)

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class Generator:
    """Writes a corpus into ``root/.aigentflow`` (``state.db`` and ``traces/segments``), every run under
    ``tenant`` (registered first if it is not)."""

    def __init__(self, root: Path, seed: int = 7, tenant: str = "default") -> None:
        self.root = Path(root)
        self.rng = random.Random(seed)
        self.tenant = tenant
        state = self.root / ".aigentflow"
        state.mkdir(parents=True, exist_ok=True)
        self.store = SQLiteRunStore(state / "state.db", create=True)
        if tenant not in {t.id for t in self.store.tenants()}:
            from aigentflow.tenants import registry

            registry.create(self.store, tenant)
        self.project = self.store.upsert_project("corpus", {})
        self.run_ids = {run.id for run in self.store.list_runs(limit=1_000_000)}
        self.writer = _TenantWriter(SegmentWriter(state / "traces", None, flush_every=1_000_000), tenant)
        self.clock = max(time.time_ns(), _latest_span_ns(state / "traces"))  # runs added later come later
        self.noise_errors = 0

    def close(self) -> None:
        self.writer.close()
        self.store.close()

    def _noise_error(self) -> str:
        """A one-off model error: its words (not only its numbers) are its own."""
        n = self.noise_errors = self.noise_errors + 1
        words = " ".join(_WORDS[(n // 26**k + 7 * k) % 26] for k in range(3))
        kind = ("APIError", "RateLimitError", "ServiceUnavailableError")[n % 3]
        return f"{kind}: upstream {words} reset after {self.rng.randint(100, 9000)} ms (request req_{n:08x})"

    def _cost(self, kind: str) -> float:
        """Around the step's base cost; one call in twenty costs three times more (still not far above)."""
        return _BASE_COST[kind] * self.rng.uniform(0.6, 1.6) * (3 if self.rng.random() < 0.05 else 1)

    def _agent(self, r: _Run, role: str, step: str, parent: str, **kwargs: Any) -> str:
        """An ordinary agent call, now and then retried once after a transient model error (noise)."""
        kind = "review" if step.startswith("review") else step.split("/")[0].split(".")[0]
        kwargs.setdefault("cost", self._cost(kind if kind in _BASE_COST else "build"))
        if "calls" not in kwargs and self.rng.random() < 0.08:
            kwargs.update(calls=2, same_prompt=2, model_errors=[self._noise_error()])
        return r.agent(role, step, parent, **kwargs)

    def write_run(self, index: int, scenario: str | None, *, pause: bool = False, coverage_wait: bool = False) -> None:
        rng, r = self.rng, _Run(self, index)
        r.move("ANALYZING")
        loops = scenario == "loops"
        r.state("ANALYZING", "analyst", "PLANNING", "analyze", lambda p: self._agent(
            r, "analyst", "analyze", p, **({"calls": 4, "same_prompt": 4} if loops else {})))
        types = [rng.choice(("backend", "backend", "docs", "test")) for _ in range(rng.randint(1, 3))]
        types += {"frontend_timeouts": ["frontend", "frontend"], "rerouted": ["frontend"],
                  "extra_fixes": ["infra"], "conflicts": ["backend"], "reviews": ["backend"]}.get(scenario, [])
        tasks = [{"id": f"T{i}", "type": t, "title": f"task {i}"} for i, t in enumerate(types, 1)]
        schema = [f"it broke the schema: tasks.{rng.randint(0, 6)}.estimate_hours: Input should be less than or "
                  f"equal to 200 (got {rng.randint(201, 999)})"] if scenario == "schema" else None
        r.state("PLANNING", "project_manager", "ARCHITECTING", "plan", lambda p: self._agent(
            r, "project_manager", "plan", p, **({"calls": 2, "model_errors": schema} if schema else {})),
            output={"tasks": tasks})
        cost = {"cost": _BASE_COST["architect"] * rng.uniform(8, 12)} if scenario == "cost" else {}
        r.state("ARCHITECTING", "architect", "BUILDING", "architect",
                lambda p: self._agent(r, "architect", "architect", p, **cost))
        if pause:
            r.move("PAUSED", "PAUSE", reason="paused from the terminal (Ctrl-C)")
            r.move("BUILDING", "RESUME")
        wait = None
        failing = [t["id"] for t in tasks if t["type"] == "frontend"] if scenario == "frontend_timeouts" else []
        if failing:
            wait = (f"task {failing[0]}'s tests fail after 3 fix attempt(s) (its work is on "
                    f"aigentflow/{r.id}/task/{failing[0]}): TimeoutError: the test command timed out after "
                    f"{rng.randint(60, 600)} s")
        elif scenario == "conflicts":
            wait = (f"merging task {tasks[-1]['id']} into aigentflow/{r.id}/feature conflicts in "
                    f"src/todo/{rng.choice(_WORDS)}.py: the Merge Conflict Resolver is off (flag agents.mergeResolver)")
        elif coverage_wait:
            wait = f"task {tasks[0]['id']}: its changed lines are {rng.randint(10, 60)}% covered, under the threshold"

        def build(parent: str) -> None:
            for task in tasks:
                conflict = wait if scenario == "conflicts" and task is tasks[-1] else None
                self._build_task(r, parent, task, scenario, failing, conflict)

        def rebuild(parent: str) -> None:  # after the human's fix: the tasks that had stopped pass
            for task in tasks:
                if task["id"] in failing or (scenario == "conflicts" and task is tasks[-1]) or coverage_wait:
                    r.task(parent, task["id"], "passed", language=_LANGUAGE.get(task["type"], "Python"))

        r.state("BUILDING", "backend_developer", "TESTING", "build", build, wait=wait, retry=rebuild)
        r.state("TESTING", "tester", "REVIEWING", "test", lambda p: self.writer.add(sp.make_span(
            "test_suite feature", "task", run_id=r.id, parent_id=p, start_ns=r.tick(3), end_ns=r.tick(9000),
            attributes={"aigentflow.test.command": "python -m pytest -q", "aigentflow.test.round": 1})))
        r.state("REVIEWING", "reviewer", "MERGING", "review", lambda p: self.writer.add(sp.make_span(
            "review feature", "task", run_id=r.id, parent_id=p, start_ns=r.tick(3), end_ns=r.tick(400),
            attributes={"aigentflow.review.verdict": "approve", "aigentflow.review.findings": 0})))
        r.state("MERGING", "git_agent", "COMPLETED", "merge", lambda p: None)
        self.writer.add(sp.run_span(r.id, start_ns=r.started, end_ns=r.tick(5), state="COMPLETED", model=MODEL,
                                    request_chars=10))
        self.writer.flush()

    def _build_task(self, r: _Run, parent: str, task: dict[str, Any], scenario: str | None,
                    failing: list[str], stop: str | None) -> None:
        rng, task_id = self.rng, task["id"]
        role, language = _IMPLEMENTER[task["type"]], _LANGUAGE.get(task["type"], "Python")
        if task_id in failing:
            self._agent(r, role, f"build/{task_id}", parent)
            for attempt in (1, 2, 3):
                self._agent(r, "bug_fixer", f"fix/{task_id}/{attempt}", parent)
            r.task(parent, task_id, "failed", 3, language=language, error=(
                f"task {task_id}'s tests fail after 3 fix attempt(s) (its work is on aigentflow/{r.id}/task/"
                f"{task_id}): TimeoutError: the test command timed out after {rng.randint(60, 600)} s"))
            return
        if scenario == "rerouted" and task["type"] == "frontend":
            self._agent(r, role, f"build/{task_id}", parent, error=(
                f"ValueError: edit /tmp/aigentflow-{rng.getrandbits(32):08x}/src/ui/{rng.choice(_WORDS)}.tsx is "
                f"outside the worktree (line {rng.randint(1, 400)})"))
            self._agent(r, "backend_developer", f"build/{task_id}", parent)
            r.task(parent, task_id, "passed", language=language)
            return
        needs_terraform = scenario == "extra_fixes" and task["type"] == "infra"
        self._agent(r, role, f"build/{task_id}", parent, **({"withheld": "terraform"} if needs_terraform else {}))
        fixes = 2 if scenario == "extra_fixes" and task["type"] == "infra" else int(rng.random() < 0.2)
        for attempt in range(1, fixes + 1):
            self._agent(r, "bug_fixer", f"fix/{task_id}/{attempt}", parent)
        review = self._agent(r, "reviewer", f"review/{task_id}/1", parent)
        if scenario == "tool_refused":
            self.writer.add(sp.tool_span(
                "github/create_pull_request", run_id=r.id, role="reviewer", arguments="{}", result_bytes=0,
                refused=True, is_error=True, start_ns=r.tick(1), end_ns=r.tick(1), parent_id=review,
                error="tool github/create_pull_request is not in the reviewer's allowlist (mcp.tools)"))
            scenario = None  # once per run
        if scenario == "reviews" and task["type"] == "backend":
            self._agent(r, role, f"build/{task_id}/rework-1", parent)
            self._agent(r, "reviewer", f"review/{task_id}/2", parent)
        if stop:
            r.task(parent, task_id, "conflict", fixes, error=stop, language=language)
        else:
            r.task(parent, task_id, "passed", fixes, language=language)


def generate(root: Path, runs: int = 60, seed: int = 7, *, tenant: str = "default",
             scenarios: tuple[str, ...] = SCENARIOS) -> list[dict[str, Any]]:
    """Write ``runs`` runs into the project at ``root`` under ``tenant``; the expected findings (each with
    ``scenario``).

    Run ``n`` plants ``SCENARIOS[n % 12]`` when ``n % 12 < 9`` and it is one of ``scenarios``; the others
    are noise only. Every scenario needs at least two runs (``runs >= 21``) to be a recurring pattern."""
    generator = Generator(root, seed, tenant)
    planted: set[str] = set()
    try:
        for index in range(runs):
            slot = index % 12
            scenario = SCENARIOS[slot] if slot < len(SCENARIOS) and SCENARIOS[slot] in scenarios else None
            if scenario:
                planted.add(scenario)
            generator.write_run(index, scenario, pause=index == 10, coverage_wait=index == 11)
    finally:
        generator.close()
    return [{**expected, "scenario": s} for s in SCENARIOS if s in planted for expected in TRUTH[s]]
