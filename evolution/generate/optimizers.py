"""The three DSPy optimizers ``evolve generate`` can compile ``ProposeRoleChange`` with, each small and
deterministic enough to replay from a cassette (fixed seeds, one thread, caches off, errors never
swallowed). Each returns the compiled program and the programs it tried, with their scores:

- ``bootstrap``: ``dspy.BootstrapFewShot``: keeps as demos the proposals that scored at least
  ``THRESHOLD`` (one try per case); one program.
- ``mipro``: ``dspy.MIPROv2`` (needs ``optuna``): bootstraps ``CANDIDATES`` demo sets, has the model
  propose ``CANDIDATES`` instructions for the signature, then ``TRIALS`` Optuna trials, each a full
  evaluation on every case of one (instruction, demo set) pair; the best pair is the program.
- ``gepa``: ``dspy.GEPA``: evaluates the program on every case, then reflects (one call of the reflection
  model, the same LM) on a minibatch's proposals and the metric's feedback to propose new instructions,
  kept when they score better, until ``max_metric_calls``; the Pareto-best program.

Imports dspy; only ``program.optimise`` calls these.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import dspy

THRESHOLD = 0.8
MAX_DEMOS = 2
CANDIDATES = 2
TRIALS = 3
SEED = 9

Metric = Callable[..., float]
Feedback = Callable[[Any, Any], tuple[float, str]]


def _instructions(program: Any) -> str:
    return str(program.predictors()[0].signature.instructions)


def _describe(program: Any, score: float | None, source: str) -> dict[str, Any]:
    return {"source": source, "instructions": _instructions(program), "demos": len(program.predictors()[0].demos),
            "score": None if score is None else round(float(score), 4)}


def bootstrap(student: Any, trainset: list[Any], metric: Metric, lm: Any) -> tuple[Any, list[dict[str, Any]]]:
    teleprompter = dspy.BootstrapFewShot(metric=metric, metric_threshold=THRESHOLD, max_bootstrapped_demos=MAX_DEMOS,
                                         max_labeled_demos=0, max_rounds=1, max_errors=1)
    compiled = teleprompter.compile(student, trainset=trainset)
    return compiled, [_describe(compiled, None, f"BootstrapFewShot: {len(compiled.demos)} demos")]


def mipro(student: Any, trainset: list[Any], metric: Metric, lm: Any) -> tuple[Any, list[dict[str, Any]]]:
    try:
        import optuna  # noqa: F401 - MIPROv2 imports it only once it has spent its bootstrap calls
    except ImportError:
        from aigentflow.exceptions import UsageError

        raise UsageError("--optimizer mipro needs the optuna package (`pip install optuna`, or dspy[optuna]); "
                         "nothing was generated.") from None
    teleprompter = dspy.MIPROv2(metric=metric, prompt_model=lm, task_model=lm, auto=None, num_candidates=CANDIDATES,
                                max_bootstrapped_demos=MAX_DEMOS, max_labeled_demos=0, num_threads=1, max_errors=1,
                                seed=SEED, metric_threshold=THRESHOLD, verbose=False, track_stats=True)
    compiled = teleprompter.compile(student, trainset=trainset, valset=trainset, num_trials=TRIALS, minibatch=False,
                                    program_aware_proposer=False, data_aware_proposer=False,
                                    tip_aware_proposer=False, fewshot_aware_proposer=False)
    tried = []
    for number, log in sorted(getattr(compiled, "trial_logs", {}).items()):
        program = log.get("full_eval_program")
        if program is None:
            continue
        params = {k: v for k, v in log.items() if k.startswith("0_predictor_")} or {"baseline": "the program as given"}
        score = log.get("full_eval_score")  # Evaluate's percentage
        tried.append({**_describe(program, None if score is None else score / 100, f"MIPROv2 trial {number}"),
                      "params": {k: str(v) for k, v in params.items()}})
    return compiled, tried


def gepa(student: Any, trainset: list[Any], feedback: Feedback, lm: Any) -> tuple[Any, list[dict[str, Any]]]:
    def metric(gold: Any, pred: Any, trace: Any = None, pred_name: Any = None, pred_trace: Any = None) -> Any:
        score, text = feedback(gold, pred)
        return dspy.Prediction(score=score, feedback=text)

    teleprompter = dspy.GEPA(metric=metric, max_metric_calls=4 * len(trainset) + 2, reflection_lm=lm,
                             reflection_minibatch_size=min(3, len(trainset)), candidate_selection_strategy="pareto",
                             use_merge=False, num_threads=1, track_stats=True, seed=0, failure_score=0.0,
                             perfect_score=1.0, warn_on_score_mismatch=False)
    compiled = teleprompter.compile(student, trainset=trainset, valset=trainset)
    results = compiled.detailed_results
    tried = [{**_describe(program, results.val_aggregate_scores[index], f"GEPA candidate {index}"),
              "parents": results.parents[index]}
             for index, program in enumerate(results.candidates)]
    return compiled, tried


def compile_program(name: str, student: Any, trainset: list[Any], metric: Metric, feedback: Feedback,
                    lm: Any) -> tuple[Any, list[dict[str, Any]]]:
    if name == "bootstrap":
        return bootstrap(student, trainset, metric, lm)
    if name == "mipro":
        return mipro(student, trainset, metric, lm)
    return gepa(student, trainset, feedback, lm)
