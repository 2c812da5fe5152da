"""The DSPy program that proposes a new role version, its metric, and the optimizer that compiles it.

Imports dspy (and, through it, litellm): only ``evolve generate`` loads this module.

- ``ProposeRoleChange``: a Signature reading the role, its current spec and instructions, the finding and
  the cases drawn from its traces; it proposes new instructions (the role's prompt layer), skills, a
  per-step budget and a one-line summary.
- ``score``: the metric (0..1) of a proposal on one case: 0 if it breaks a constitutional rule; else
  0.4 for keeping the incumbent's instructions (the share of its sentences kept), 0.3 when what it adds
  names what the finding is about (its step kind, e.g. ``test``), 0.3 when what it adds speaks of the
  failure for a failed case (always, for an accepted one). A proxy: it grades the proposal against the
  graded cases; it does not run the role on them.
- ``optimise``: BootstrapFewShot over one training example per case (the demos it keeps are proposals
  that scored at least ``THRESHOLD``); then every proposal seen (each bootstrapped one and the compiled
  program's on all cases) is scored on every case and the best is chosen. Errors are never swallowed
  (``max_errors=1``): a reply that does not parse or a model error stops the generation.
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

THRESHOLD = 0.8
MAX_DEMOS = 2
OPTIMIZERS = ("bootstrap",)


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


def case_lines(cases: list[dict[str, Any]]) -> str:
    return "\n".join(json.dumps(c, sort_keys=True) for c in cases) or "(no calls of this role in the traces)"


def examples(inputs: Inputs) -> list[dspy.Example]:
    """One training example per case (the finding with that case), inputs only: the metric grades them."""
    base = {"role": inputs.role, "current_spec": inputs.current_spec,
            "current_instructions": inputs.current_instructions, "finding": inputs.finding}
    return [dspy.Example(**base, cases=case_lines([case]), outcome=case["outcome"]).with_inputs(*base, "cases")
            for case in inputs.cases]


def _sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n+", text) if len(s.strip()) > 20]


Check = Callable[[Any], list[Any]]
"""A proposal -> its constitutional violations (``generate.check_proposal``)."""


def score(example: Any, proposal: Any, check: Check, cue: str) -> float:
    if check(proposal):
        return 0.0
    text = " ".join(str(proposal.instructions).split()).lower()
    kept = [" ".join(s.split()).lower() for s in _sentences(example.current_instructions)]
    value = 0.4 * (sum(s in text for s in kept) / len(kept) if kept else 1.0)
    added = text
    for sentence in kept:
        added = added.replace(sentence, " ")
    value += 0.3 if cue and cue.lower() in added else 0.0
    if getattr(example, "outcome", "accepted") == "failed":
        value += 0.3 if re.search(r"\bfail", added) else 0.0
    else:
        value += 0.3
    return round(value, 4)


@dataclass
class Outcome:
    chosen: dict[str, Any]
    candidates: list[dict[str, Any]] = field(default_factory=list)
    program_state: dict[str, Any] = field(default_factory=dict)
    model_calls: int = 0


def _as_candidate(source: str, prediction: Any) -> dict[str, Any]:
    return {"source": source, "instructions": str(prediction.new_instructions),
            "skills": list(prediction.skills or []), "budget": prediction.budget, "summary": str(prediction.summary)}


def as_proposal(candidate: dict[str, Any]) -> SimpleNamespace:
    """A candidate's proposal, as ``score`` and the constitutional check read it."""
    return SimpleNamespace(**{k: candidate[k] for k in ("instructions", "skills", "budget", "summary")})


def optimise(inputs: Inputs, lm: Any, check: Check, optimizer: str = "bootstrap") -> Outcome:
    """Compile ``ProposeRoleChange`` with ``optimizer`` on ``lm`` and choose the best proposal (see the
    module docstring). DSPy's caches are off: every proposal is a call the cassette (or model) answers."""
    if optimizer not in OPTIMIZERS:
        from aigentflow.exceptions import UsageError

        raise UsageError(f"--optimizer {optimizer!r} is not available; use one of {', '.join(OPTIMIZERS)}")
    dspy.configure_cache(enable_disk_cache=False, enable_memory_cache=False)
    trainset = examples(inputs)
    seen: list[dict[str, Any]] = []

    def metric(example: Any, prediction: Any, trace: Any = None) -> float:
        candidate = _as_candidate(f"bootstrap: {example.cases}", prediction)
        value = score(example, as_proposal(candidate), check, inputs.cue)
        seen.append({**candidate, "bootstrap_score": value})
        return value

    adapter = dspy.ChatAdapter(use_json_adapter_fallback=False)
    # The optimizer prints its progress: to stderr, so that --json output stays one document.
    with dspy.context(lm=lm, adapter=adapter), contextlib.redirect_stdout(sys.stderr):
        teleprompter = dspy.BootstrapFewShot(metric=metric, metric_threshold=THRESHOLD,
                                             max_bootstrapped_demos=MAX_DEMOS, max_labeled_demos=0,
                                             max_rounds=1, max_errors=1)
        compiled = teleprompter.compile(dspy.Predict(ProposeRoleChange), trainset=trainset) if trainset else \
            dspy.Predict(ProposeRoleChange)
        final = compiled(role=inputs.role, current_spec=inputs.current_spec,
                         current_instructions=inputs.current_instructions, finding=inputs.finding,
                         cases=case_lines(inputs.cases))
    candidates = [*seen, _as_candidate(f"compiled ({len(compiled.demos)} demos): all cases", final)]
    grading = trainset or [dspy.Example(current_instructions=inputs.current_instructions, outcome="accepted")]
    for candidate in candidates:
        proposal = as_proposal(candidate)
        per_case = [score(example, proposal, check, inputs.cue) for example in grading]
        candidate["violations"] = [str(v) for v in check(proposal)]
        candidate["scores"] = per_case
        candidate["score"] = round(sum(per_case) / len(per_case), 4)
    # The best on every case; of equals, the compiled program's (it saw every case and the demos).
    chosen = max(reversed(candidates), key=lambda c: c["score"])
    return Outcome(chosen=chosen, candidates=candidates, program_state=compiled.dump_state(json_mode=True),
                   model_calls=len(lm.history))
