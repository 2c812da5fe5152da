"""The pattern miner: precision and recall on a generated corpus with planted patterns, and the time of
each query class over 10M spans.

1. ``evolution.patterns.corpus.generate`` writes RUNS runs (real SQLite store, Parquet segments through
   ``SegmentWriter``) with 9 planted scenarios among noise; the miner's findings are scored against
   the ground truth.
2. DuckDB writes SPANS more spans (100 per run: states, agents, model calls, tools, build tasks,
   transitions, with recurring errors, prompt loops, refused tools and cost outliers) as 8 segments of
   the same project; the miner extracts their facts once (``facts_build_s``), then every query class is
   timed over all of them (best of ``--repeat``); ``facts_incremental_s`` is the cost of one new
   segment (one more run) at the next mining.

Prints one JSON line: {"benchmark": "pattern_mining", "spans": ..., "precision": ..., "recall": ...,
"facts_build_s": ..., "facts_incremental_s": ..., "query_s": {class: s}, "max_query_s": ..., ...}.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import tempfile
import time
from pathlib import Path

import duckdb

from evolution.patterns import facts, miner
from evolution.patterns.corpus import Generator, generate, score

ROLES = ("analyst", "project_manager", "architect", "backend_developer", "frontend_developer", "tester",
         "bug_fixer", "reviewer")
STEPS = ("analyze", "plan", "architect", "build/T1", "build/T2", "test/T1", "fix/T1/1", "review/T1/1")


def synthetic_spans(trace_dir: Path, spans: int, segments: int = 8) -> float:
    """``spans`` spans written by DuckDB as ``segments`` Parquet files; returns the seconds it took."""
    started = time.perf_counter()
    out = trace_dir / "segments"
    out.mkdir(parents=True, exist_ok=True)
    roles = "[" + ", ".join(f"'{r}'" for r in ROLES) + "]"
    steps = "[" + ", ".join(f"'{s}'" for s in STEPS) + "]"
    per = spans // segments
    connection = duckdb.connect()
    connection.execute("SET threads = 2")
    for number in range(segments):
        connection.execute(f"""
        COPY (
        WITH base AS (
            SELECT i, i // 100 AS r, i % 100 AS p, 1700000000000000000 + i * 1000000 AS t,
                   {roles}[1 + (i // 100 + i % 8) % 8] AS role, {steps}[1 + (i % 100) % 8] AS step
            FROM range({number * per}, {(number + 1) * per}) AS g(i))
        SELECT lpad(to_hex(i), 16, '0') AS span_id, md5('run' || r)[:32] AS trace_id,
               CASE WHEN p = 0 THEN NULL
                    WHEN p BETWEEN 29 AND 78 THEN lpad(to_hex(i - p + 9 + (p - 29) % 20), 16, '0')
                    WHEN p BETWEEN 9 AND 28 THEN lpad(to_hex(i - p + 1 + (p - 9) % 8), 16, '0')
                    ELSE lpad(to_hex(i - p), 16, '0') END AS parent_id,
               'run-' || r AS run_id, 'default' AS tenant_id,
               CASE WHEN p = 0 THEN 'invoke_workflow aigentflow' WHEN p <= 8 THEN 'state BUILDING'
                    WHEN p <= 28 THEN 'invoke_agent ' || role WHEN p <= 78 THEN 'chat openai/gpt-4o-mini'
                    WHEN p <= 88 THEN 'execute_tool github/create_pull_request' WHEN p <= 95 THEN 'build_task T' || p
                    ELSE 'transition BUILDING -> TESTING' END AS name,
               CASE WHEN p = 0 THEN 'run' WHEN p <= 8 THEN 'state' WHEN p <= 28 THEN 'agent' WHEN p <= 78 THEN 'model'
                    WHEN p <= 88 THEN 'tool' WHEN p <= 95 THEN 'task' ELSE 'transition' END AS kind,
               t AS start_ns, t + 500000 AS end_ns,
               CASE WHEN (p BETWEEN 29 AND 78 AND i % 97 = 0) OR (p = 89 AND r % 300 = 0)
                         OR (p = 79 AND r % 400 = 0) THEN 'error' ELSE 'ok' END AS status,
               CASE WHEN p BETWEEN 29 AND 78 AND i % 97 = 0
                        THEN ['APIError', 'RateLimitError', 'TimeoutError'][1 + i % 3] || ': upstream reset after '
                             || (i % 9000) || ' ms (request req_' || md5(i::VARCHAR)[:12] || ') template ' || (i % 40)
                    WHEN p = 89 AND r % 300 = 0
                        THEN 'task T1''s tests fail after 3 fix attempt(s) (its work is on aigentflow/run-' || r
                             || '/task/T1): TimeoutError: the test command timed out after ' || (i % 600) || ' s'
                    WHEN p = 79 AND r % 400 = 0 THEN 'tool github/create_pull_request is not in the allowlist'
               END AS error,
               CASE WHEN p <= 8 THEN to_json({{'gen_ai.agent.name': 'backend_developer',
                                              'gen_ai.agent.version': '1.0.0', 'aigentflow.state.from': 'BUILDING',
                                              'aigentflow.state.to': 'TESTING'}})
                    WHEN p <= 28 THEN to_json({{'gen_ai.operation.name': 'invoke_agent', 'gen_ai.agent.name': role,
                        'gen_ai.agent.version': '1.0.0', 'aigentflow.step': step, 'aigentflow.attempt': 1,
                        'aigentflow.prompt_hash': 'sha256:' || md5(i::VARCHAR) || md5((i + 1)::VARCHAR),
                        'gen_ai.usage.input_tokens': 1000 + i % 4000, 'gen_ai.usage.output_tokens': 300,
                        'aigentflow.cost_usd': CASE WHEN r % 250 = 0 AND p = 9 THEN 0.5
                                                    ELSE 0.01 * (1 + (i % 7) / 10) END}})
                    WHEN p <= 78 THEN to_json({{'gen_ai.operation.name': 'chat',
                        'gen_ai.request.model': 'openai/gpt-4o-mini',
                        'gen_ai.agent.name': role, 'gen_ai.agent.version': '1.0.0',
                        'aigentflow.prompt_hash': 'sha256:' || CASE WHEN r % 500 = 0 AND p BETWEEN 29 AND 32
                                                               THEN md5('loop' || r) ELSE md5(i::VARCHAR) END,
                        'gen_ai.usage.input_tokens': 1000 + i % 4000, 'gen_ai.usage.output_tokens': 300,
                        'aigentflow.cost_usd': 0.002, 'aigentflow.attempt': 1}})
                    WHEN p <= 88 THEN to_json({{'gen_ai.operation.name': 'execute_tool',
                        'gen_ai.tool.name': 'github/create_pull_request', 'aigentflow.tool.role': 'reviewer',
                        'aigentflow.tool.refused': p = 79 AND r % 400 = 0, 'aigentflow.tool.result_bytes': 120}})
                    WHEN p <= 95 THEN to_json({{'aigentflow.task.id': 'T' || p,
                        'aigentflow.task.status': CASE WHEN p = 89 AND r % 300 = 0 THEN 'failed' ELSE 'passed' END,
                        'aigentflow.task.fix_attempts': CASE WHEN p = 89 AND r % 300 = 0 THEN 3 ELSE i % 2 END}})
                    ELSE to_json({{'aigentflow.state.from': 'BUILDING', 'aigentflow.state.to': 'TESTING'}})
               END::VARCHAR AS attributes
        FROM base
        ) TO '{out}/{number:020d}-bench-{number:06d}.parquet' (FORMAT PARQUET)
        """)
    connection.close()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spans", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=120, help="runs of the scored corpus")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pattern-mining-") as scratch:
        root = Path(scratch) / "project"
        root.mkdir()
        subprocess.run(["git", "init", "-q", str(root)], check=True)
        truth = generate(root, runs=args.runs, seed=7)
        measured = score(miner.mine(root)["findings"], truth)
        generated_s = synthetic_spans(root / ".aigentflow" / "traces", args.spans)

        connection = miner.connect(facts.facts_dir(root))
        with facts.facts_lock(facts.facts_dir(root)):
            build = facts.update_facts(connection, root)
        total = connection.execute(f"SELECT count(*) FROM {facts.facts_source(root)}").fetchone()[0]
        best: dict[str, float] = {}
        found: list[dict] = []
        for _ in range(args.repeat):
            found, timings = miner.find(connection, root)
            for name, seconds in timings.items():
                best[name] = min(best.get(name, seconds), seconds)
        connection.close()

        more = Generator(root, seed=99)
        more.write_run(0, "loops")
        more.close()
        incremental = miner.mine(root)["facts"]
    query_s = {name: s for name, s in best.items() if name != "load"}
    print(json.dumps({
        "benchmark": "pattern_mining", "spans": int(total), "corpus_runs": args.runs,
        "precision": round(measured["precision"], 3), "recall": round(measured["recall"], 3),
        "expected_findings": len(truth), "false_positives": len(measured["false_positives"]),
        "generate_10m_s": round(generated_s, 2), "facts_build_s": build["seconds"],
        "facts_incremental_s": incremental["seconds"], "load_s": best["load"], "query_s": query_s,
        "max_query_s": max(query_s.values()), "findings_over_all_spans": len(found),
    }))


if __name__ == "__main__":
    main()
