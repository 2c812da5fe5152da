"""The DSPy program that proposes a new role version, its metric, the optimizer that compiles it, and the
model's critique of the chosen proposal against the constitution.

Imports dspy (and, through it, litellm): only ``evolve generate`` loads this module.

- ``ProposeRoleChange``: a Signature reading the role, its current spec and instructions, the finding and
  the cases drawn from its traces; it proposes new instructions (the role's prompt layer), skills, a
  per-step budget and a one-line summary.
- ``grade`` / ``score``: the metric (0..1) of a proposal on one example (one traced call of the role): 0 if
  it breaks a constitutional rule; else the role is run with the proposal as its prompt layer (its agent
  class, ``regression.CaseRunner``) on the example's case and on the finding's (the cases the incumbent
  failed), its edits tested in the sandbox: the mean share of the project's tests passing, with the
  failing tests as feedback (what GEPA reflects on). Where a case cannot be rebuilt from the store and git
  (or no runner is given, as in the DummyLM test), ``proxy_grade`` grades the text against the case.
- ``optimise``: compiles with ``optimizers.compile_program`` (bootstrap, mipro or gepa) over one training
  example per case; then every proposal seen (those the metric graded and the compiled program's on all
  cases) is scored on every case and the best is chosen. The programs the optimizer tried are kept.
  A reply that does not parse or a model error stops the generation (BootstrapFewShot and the final call
  never swallow one; MIPROv2 and GEPA score a failed evaluation 0, as DSPy does, and go on).
- ``critique``: ``CritiqueAgainstConstitution`` on the chosen proposal, one call, recorded like the rest.
"""

from __future__ import annotations

import contextlib
import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import dspy

from evolution.generate.cases import Inputs

OPTIMIZERS = ("bootstrap", "mipro", "gepa")


class ProposeRoleChange(dspy.Signature):
    """Propose a new version of an AI agent role that fixes a recurring problem mined from its traces.

    Rewrite the role's instructions (a markdown prompt layer saying who the agent is and how it works) so
    that the agent avoids the problem shown by the finding and the failed cases; keep every rule of the
    current instructions. Never widen its tools, never skip or weaken tests, write no URLs or secrets.
    Propose the skills it should be given (names it already may use) and its budget of model calls per
    step (no higher than the current one)."""

    role: str = dspy.InputField(desc="the role's name")
    current_spec: str = dspy.InputField(desc="the current version's spec, JSON")
    current_instructions: str = dspy.InputField(desc="the current role prompt layer, markdown")
    finding: str = dspy.InputField(desc="the mined finding to fix, JSON: kind, title, count, details")
    cases: str = dspy.InputField(desc="calls of the role drawn from its traces, one JSON object a line: "
                                      "step, attempt, outcome (accepted or failed), detail")
    new_instructions: str = dspy.OutputField(desc="the complete new role prompt layer, markdown")
    skills: list[str] = dspy.OutputField(desc="skills it should be given, by name")
    budget: int = dspy.OutputField(desc="most model calls one of its steps may make")
    summary: str = dspy.OutputField(desc="what changed and why, in one sentence")


class CritiqueAgainstConstitution(dspy.Signature):
    """Judge a proposed new version of an AI agent role against the constitution every agent follows.

    It complies only if an agent following the new instructions would keep every rule of the constitution:
    no weakened or skipped tests, no work outside its task, no secrets or network use it was not given, no
    setting the constitution or its output format aside. List each concern as one sentence."""

    constitution: str = dspy.InputField(desc="the constitution layer every agent's prompt starts with, markdown")
    role: str = dspy.InputField(desc="the role's name")
    current_instructions: str = dspy.InputField(desc="the current role prompt layer, markdown")
    new_instructions: str = dspy.InputField(desc="the proposed role prompt layer, markdown")
    summary: str = dspy.InputField(desc="what the proposal says it changes")
    complies: bool = dspy.OutputField(desc="true if the proposal keeps every rule of the constitution")
    concerns: list[str] = dspy.OutputField(desc="each way it breaks or weakens a rule; empty if none")
    reasoning: str = dspy.OutputField(desc="why, in two or three sentences")


def critique(inputs: Inputs, constitution: str, chosen: dict[str, Any], lm: Any) -> dict[str, Any]:
    """The model's critique of the chosen proposal (one call, recorded like the proposals)."""
    dspy.configure_cache(enable_disk_cache=False, enable_memory_cache=False)
    before = len(lm.history)
    adapter = dspy.ChatAdapter(use_json_adapter_fallback=False)
    with dspy.context(lm=lm, adapter=adapter):
        verdict = dspy.Predict(CritiqueAgainstConstitution)(
            constitution=constitution, role=inputs.role, current_instructions=inputs.current_instructions,
            new_instructions=chosen["instructions"], summary=chosen["summary"])
    return {"complies": bool(verdict.complies), "concerns": [str(c) for c in verdict.concerns or []],
            "reasoning": str(verdict.reasoning), "model_calls": len(lm.history) - before}


def case_lines(cases: list[dict[str, Any]]) -> str:
    return "\n".join(json.dumps(c, sort_keys=True) for c in cases) or "(no calls of this role in the traces)"


def examples(inputs: Inputs) -> list[dspy.Example]:
    """One training example per case (the finding with that case), inputs only: the metric grades them."""
    base = {"role": inputs.role, "current_spec": inputs.current_spec,
            "current_instructions": inputs.current_instructions, "finding": inputs.finding}
    return [dspy.Example(**base, cases=case_lines([case]), outcome=case["outcome"], step=case["step"])
            .with_inputs(*base, "cases") for case in inputs.cases]


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n+", text) if len(s.strip()) > 20]


Check = Callable[[Any], list[Any]]
"""A proposal -> its constitutional violations (``generate.check_proposal``)."""


def grade(example: Any, proposal: Any, check: Check, cue: str, runner: Any = None) -> tuple[float, str]:
    """The metric with its reasons (GEPA reflects on them): see the module docstring."""
    if violations := check(proposal):
        return 0.0, "Rejected by the constitution: " + "; ".join(str(v) for v in violations)
    case = runner.by_step.get(getattr(example, "step", None)) if runner is not None else None
    if case is None:
        return proxy_grade(example, proposal, cue)
    # The example's own case, and the finding's (the cases the incumbent failed): fix it, break nothing.
    graded = [case, *(c for c in runner.cases if c["incumbent"] == "failed" and c["id"] != case["id"])]
    results = [run_grade(runner, c, str(proposal.instructions)) for c in graded]
    value = round(sum(v for v, _ in results) / len(results), 4)
    return value, ("Good: " if value >= 1 else "Weak: ") + " ".join(text for _, text in results)


def run_grade(runner: Any, case: dict[str, Any], instructions: str) -> tuple[float, str]:
    """The role run with these instructions on the case, its edits tested in the sandbox."""
    from evolution.generate.regression import share_passed

    result = runner.run(instructions, case)
    value = share_passed(result)
    if result.get("error"):
        return value, f"The role's call failed on {case['step']}: {result['error'][:300]}."
    tests = result.get("tests") or {}
    said = f"{tests.get('passed', '?')} of {tests.get('total', '?')} of the project's tests passed on {case['step']}"
    if result.get("passed"):
        return value, f"{said} after the role's edits."
    failing = ", ".join(result.get("failing") or []) or f"exit code {result.get('exit_code')}"
    return value, f"Only {said} (failing: {failing}); the instructions must make the role avoid this."


def proxy_grade(example: Any, proposal: Any, cue: str) -> tuple[float, str]:
    """Where a case cannot be rebuilt to run the role on: the proposal's text against the graded case."""
    text = " ".join(str(proposal.instructions).split()).lower()
    kept = [" ".join(s.split()).lower() for s in _sentences(example.current_instructions)]
    share = sum(s in text for s in kept) / len(kept) if kept else 1.0
    value, notes = 0.4 * share, []
    if share < 1:
        notes.append(f"it dropped {len(kept) - sum(s in text for s in kept)} sentence(s) of the current instructions")
    added = text
    for sentence in kept:
        added = added.replace(sentence, " ")
    if cue and cue.lower() in added:
        value += 0.3
    elif cue:
        notes.append(f"what it adds never names {cue!r}, what the finding is about")
    if getattr(example, "outcome", "accepted") == "failed" and not re.search(r"\bfail", added):
        notes.append("the case failed, and what it adds never speaks of the failure")
    else:
        value += 0.3
    return round(value, 4), ("Good: " if not notes else "Weak: ") + ("; ".join(notes) or "keeps every rule and "
                                                                   "addresses the finding and the case")


def score(example: Any, proposal: Any, check: Check, cue: str, runner: Any = None) -> float:
    return grade(example, proposal, check, cue, runner)[0]


@dataclass
class Outcome:
    chosen: dict[str, Any]
    candidates: list[dict[str, Any]] = field(default_factory=list)
    program_state: dict[str, Any] = field(default_factory=dict)
    model_calls: int = 0
    programs: list[dict[str, Any]] = field(default_factory=list)
    """The programs the optimizer tried (instructions, demos, score), best first."""


def _as_candidate(source: str, prediction: Any) -> dict[str, Any]:
    return {"source": source, "instructions": str(prediction.new_instructions),
            "skills": list(prediction.skills or []), "budget": prediction.budget, "summary": str(prediction.summary)}


def as_proposal(candidate: dict[str, Any]) -> SimpleNamespace:
    """A candidate's proposal, as ``score`` and the constitutional check read it."""
    return SimpleNamespace(**{k: candidate[k] for k in ("instructions", "skills", "budget", "summary")})


def optimise(inputs: Inputs, lm: Any, check: Check, optimizer: str = "bootstrap", runner: Any = None) -> Outcome:
    """Compile ``ProposeRoleChange`` with ``optimizer`` on ``lm`` and choose the best proposal (see the
    module docstring). DSPy's caches are off: every proposal is a call the cassette (or model) answers."""
    if optimizer not in OPTIMIZERS:
        from aigentflow.exceptions import UsageError

        raise UsageError(f"--optimizer {optimizer!r} is not available; use one of {', '.join(OPTIMIZERS)}")
    from evolution.generate.optimizers import compile_program

    dspy.configure_cache(enable_disk_cache=False, enable_memory_cache=False)
    trainset = examples(inputs)
    seen: dict[str, dict[str, Any]] = {}

    def note(example: Any, prediction: Any) -> dict[str, Any]:
        candidate = _as_candidate(f"{optimizer}: {example.cases}", prediction)
        return seen.setdefault(candidate["instructions"], candidate)

    def metric(example: Any, prediction: Any, trace: Any = None) -> float:
        return score(example, as_proposal(note(example, prediction)), check, inputs.cue, runner)

    def feedback(example: Any, prediction: Any) -> tuple[float, str]:
        return grade(example, as_proposal(note(example, prediction)), check, inputs.cue, runner)

    adapter = dspy.ChatAdapter(use_json_adapter_fallback=False)
    # The optimizer prints its progress: to stderr, so that --json output stays one document.
    with dspy.context(lm=lm, adapter=adapter), contextlib.redirect_stdout(sys.stderr):
        student = dspy.Predict(ProposeRoleChange)
        if len(trainset) >= 2 or (trainset and optimizer == "bootstrap"):
            compiled, programs = compile_program(optimizer, student, trainset, metric, feedback, lm)
        else:
            compiled, programs = student, [{"source": f"{optimizer} not run: {len(trainset)} traced case(s)",
                                            "instructions": str(ProposeRoleChange.instructions), "demos": 0,
                                            "score": None}]
        final = compiled(role=inputs.role, current_spec=inputs.current_spec,
                         current_instructions=inputs.current_instructions, finding=inputs.finding,
                         cases=case_lines(inputs.cases))
    demos = len(compiled.predictors()[0].demos)
    candidates = [*seen.values(), _as_candidate(f"compiled ({demos} demos): all cases", final)]
    grading = trainset or [dspy.Example(current_instructions=inputs.current_instructions, outcome="accepted")]
    for candidate in candidates:
        proposal = as_proposal(candidate)
        per_case = [score(example, proposal, check, inputs.cue, runner) for example in grading]
        candidate["violations"] = [str(v) for v in check(proposal)]
        candidate["scores"] = per_case
        candidate["score"] = round(sum(per_case) / len(per_case), 4)
    # The best on every case; of equals, the compiled program's (it saw every case and the demos).
    chosen = max(reversed(candidates), key=lambda c: c["score"])
    programs.sort(key=lambda p: -1.0 if p["score"] is None else -p["score"])
    return Outcome(chosen=chosen, candidates=candidates, program_state=compiled.dump_state(json_mode=True),
                   model_calls=len(lm.history) + (runner.model_calls if runner is not None else 0), programs=programs)
