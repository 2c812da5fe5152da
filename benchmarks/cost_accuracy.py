"""Model cost tracking accuracy: the cost aigentflow records for each call vs. the cost computed from the
usage the provider reported (in its reply) times the price in litellm's cost map (or the model's own
configured price), over many calls of the three provider types, 1 in 5 of them rate limited (429) so
that a fallback on another provider answers. Also the latency a fallback adds.

    python benchmarks/cost_accuracy.py [--calls 300]

Prints one JSON line. The providers are local HTTP servers speaking OpenAI's chat completions, Anthropic's
messages API and an OpenAI-compatible (Ollama/vLLM) endpoint (``tests/provider_servers.py``), each reporting
random usage (50-40,000 input, 5-4,000 output tokens); calls go through ``ModelClient`` and litellm's
Router as a run's do. The expected cost is computed here from the cost map's JSON by hand, not by litellm.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from pydantic import BaseModel

from aigentflow.config.settings import Settings
from aigentflow.models import catalog as model_catalog
from aigentflow.models.client import ModelClient
from aigentflow.models.names import build_model_spec
from tests.provider_servers import ProviderServer, catalog, serving


class Answer(BaseModel):
    value: int


def expected(settings: Settings, model: str, input_tokens: int, output_tokens: int) -> float:
    """Reported usage x the price: the model's configured one, else the cost map's entry."""
    entry = settings.models[model]
    if entry.input_cost_per_mtok is not None:
        return input_tokens * entry.input_cost_per_mtok / 1e6 + output_tokens * (entry.output_cost_per_mtok or 0) / 1e6
    prices = model_catalog.cost_map()[entry.model]
    return input_tokens * prices["input_cost_per_token"] + output_tokens * prices["output_cost_per_token"]


def measure(calls: int = 300, seed: int = 7) -> dict[str, Any]:
    os.environ.setdefault("BENCH_OPENAI_KEY", "sk-local")
    os.environ.setdefault("BENCH_ANTHROPIC_KEY", "sk-ant-local")
    pick = random.Random(seed)
    with serving(ProviderServer("openai", seed=seed), ProviderServer("anthropic", seed=seed + 1),
                 ProviderServer("openai", seed=seed + 2)) as servers:
        data = catalog(*servers, models__gpt={"fallbacks": ["claude"]}, models__claude={"fallbacks": ["llama"]},
                       models__llama={"fallbacks": ["gpt"]}, routing={"retries": 0, "cooldown_s": 0})
        data["providers"]["openai"]["key_env"] = "BENCH_OPENAI_KEY"
        data["providers"]["anthropic"]["key_env"] = "BENCH_ANTHROPIC_KEY"
        settings = Settings.model_validate(data)
        clients = {name: ModelClient(build_model_spec(settings.model.model_copy(update={"name": name}), None,
                                                      settings=settings)) for name in ("gpt", "claude", "llama")}
        index = {"gpt": 0, "claude": 1, "llama": 2}
        recorded = computed = 0.0
        per_model: dict[str, dict[str, float]] = {}
        direct, fallback = [], []
        for number in range(calls):
            name = ("gpt", "claude", "llama")[number % 3]
            limited = pick.random() < 0.2
            if limited:
                servers[index[name]].script.append(429)
            started = time.perf_counter()
            result = clients[name].call_structured([{"role": "user", "content": f"call {number}"}], Answer,
                                                   role="analyst", step="analyze")
            seconds = time.perf_counter() - started
            [call] = result.calls
            answered = servers[index[call.model]].served[-1]
            want = expected(settings, call.model, answered["input_tokens"], answered["output_tokens"])
            assert (call.input_tokens, call.output_tokens) == (answered["input_tokens"], answered["output_tokens"])
            assert bool(call.fallback_from) == limited, (number, name, call.model)
            recorded += call.cost_usd
            computed += want
            row = per_model.setdefault(call.model, {"calls": 0, "recorded_usd": 0.0, "expected_usd": 0.0})
            row["calls"] += 1
            row["recorded_usd"] += call.cost_usd
            row["expected_usd"] += want
            (fallback if limited else direct).append(seconds)
        absolute_error = sum(abs(r["recorded_usd"] - r["expected_usd"]) for r in per_model.values())
    return {
        "calls": calls,
        "fallbacks": len(fallback),
        "recorded_usd": round(recorded, 9),
        "expected_usd": round(computed, 9),
        "accuracy_percent": round(100 * (1 - absolute_error / computed), 6) if computed else None,
        "per_model": {m: {k: round(v, 9) for k, v in row.items()} for m, row in sorted(per_model.items())},
        "direct_call_ms_p50": round(1000 * statistics.median(direct), 2) if direct else None,
        "fallback_call_ms_p50": round(1000 * statistics.median(fallback), 2) if fallback else None,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    print(json.dumps(measure(args.calls), sort_keys=True))


if __name__ == "__main__":
    main()
