"""Feature-flag evaluation latency: p50/p99 through aigentflow's OpenFeature provider directly and through
the OpenFeature SDK's client, for a plain (static) flag, a targeted one and a percentage rollout.

    python benchmarks/flag_eval.py [--evaluations 20000] [--repeat 5]

Prints one JSON line. Each evaluation is timed alone (perf_counter_ns around one call, the timer's own
cost measured and subtracted); subjects vary so the rollout hashes a new targeting key each time.
No Ray, no model, no files: the flags are built in memory as a flags file would define them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from openfeature.evaluation_context import EvaluationContext

from aigentflow.config.loader import load_config
from aigentflow.flags.definitions import parse_definition
from aigentflow.flags.evaluate import Evaluator
from aigentflow.flags.load import definitions
from aigentflow.flags.provider import AigentflowProvider, client

CASES = {
    "plain": "agents.analyst",
    "targeted": "enterprise.ssoRequired",
    "rollout": "features.newPlanner",
}


def _provider() -> AigentflowProvider:
    config = load_config(None, env={})
    found = definitions(config, [])
    found["enterprise.ssoRequired"] = parse_definition(
        "enterprise.ssoRequired",
        {"rules": [{"when": {"tenant": ["globex", "initech"], "role": "reviewer"}, "value": True},
                   {"when": {"tenant": "acme"}, "value": True}]},
        found["enterprise.ssoRequired"], "benchmark")
    found["features.newPlanner"] = parse_definition(
        "features.newPlanner", {"type": "boolean", "default": False, "rollout": {"percent": 25, "value": True}},
        None, "benchmark")
    return AigentflowProvider(Evaluator(found))


def _percentiles(samples: list[int], overhead: int) -> dict[str, float]:
    ordered = sorted(max(s - overhead, 0) for s in samples)
    return {"p50_us": round(ordered[len(ordered) // 2] / 1000, 3),
            "p99_us": round(ordered[int(len(ordered) * 0.99)] / 1000, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--evaluations", type=int, default=20000)
    parser.add_argument("--repeat", type=int, default=5, help="Rounds; the figures are the median round's.")
    args = parser.parse_args()
    provider = _provider()
    flags = client(provider, domain="benchmark")
    contexts = [EvaluationContext(f"user-{n}", {"tenant": "acme" if n % 2 else "umbrella", "project": "p",
                                                "role": "reviewer", "user": f"user-{n}"})
                for n in range(args.evaluations)]
    clock = time.perf_counter_ns
    empty = []
    for _ in range(args.evaluations):
        start = clock()
        empty.append(clock() - start)
    overhead = sorted(empty)[len(empty) // 2]

    results: dict[str, dict[str, dict[str, float]]] = {}
    for case, key in CASES.items():
        for path, call in (("provider", provider.resolve_boolean_details), ("client", flags.get_boolean_value)):
            rounds = []
            for _ in range(args.repeat):
                samples = []
                for context in contexts:
                    start = clock()
                    call(key, False, context)
                    samples.append(clock() - start)
                rounds.append(_percentiles(samples, overhead))
            rounds.sort(key=lambda r: r["p99_us"])
            results.setdefault(case, {})[path] = rounds[len(rounds) // 2]
    added = {case: round(statistics.fmean([r["client"]["p50_us"] - r["provider"]["p50_us"]]), 3)
             for case, r in results.items()}
    rollout_share = sum(provider.resolve_boolean_details("features.newPlanner", False, c).value
                        for c in contexts) / len(contexts)
    figures = {f"{case}_{path}": each for case, paths in results.items() for path, each in paths.items()}
    print(json.dumps({"evaluations": args.evaluations, "repeat": args.repeat, "timer_overhead_ns": overhead,
                      **figures,
                      "client_adds_p50_us": added, "rollout_25pct_share": round(rollout_share, 4),
                      "goal_provider_p99_under_10us": all(r["provider"]["p99_us"] < 10 for r in results.values()),
                      "plan_client_p99_under_10ms": all(r["client"]["p99_us"] < 10_000 for r in results.values())}))


if __name__ == "__main__":
    main()
