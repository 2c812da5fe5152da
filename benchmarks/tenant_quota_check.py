"""What a tenant's quotas cost: the check before each model call (``Allowance.refusal``, no query), the read
before each step (``allowance``: the tenant's quotas and its usage, on a store of many steps), and the Model
Gateway's rate limiter (``RateLimiter.reserve``).

    python benchmarks/tenant_quota_check.py [--steps 20000]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any


def _per_call_us(action: Any, count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        action()
    return (time.perf_counter() - started) / count * 1e6


def measure(steps: int = 20_000, calls: int = 200_000) -> dict[str, float]:
    from aigentflow.store.rows import now_iso as store_now
    from aigentflow.store.sqlite import SQLiteRunStore
    from aigentflow.tenants import registry
    from aigentflow.tenants.quotas import allowance
    from aigentflow.tenants.ratelimit import RateLimiter

    with tempfile.TemporaryDirectory() as tmp, SQLiteRunStore(Path(tmp) / "state.db", create=True) as store:
        project = store.upsert_project("bench", {})
        registry.create(store, "acme")
        registry.set_quota(store, "acme", "tokens", 10**12, "day")
        registry.set_quota(store, "acme", "cost_usd", 10**6, "month")
        registry.set_quota(store, "acme", "runs", 10**6, "day")
        conn = store._conn
        conn.execute("BEGIN")
        for index in range(steps // 10):  # 10 steps a run; half the rows another tenant's
            tenant = "acme" if index % 2 else "default"
            run = f"run-{index:06d}"
            conn.execute("INSERT INTO runs (id, tenant_id, project_id, request, model, state, created_at, updated_at,"
                         " settings_json, flags_json) VALUES (?,?,?,?,?,?,datetime('now'),datetime('now'),'{}','{}')",
                         (run, tenant, project, "r", "m", "COMPLETED"))
            for step in range(10):
                conn.execute("INSERT INTO steps (run_id, step, attempt, tenant_id, role, state, status, started_at,"
                             " finished_at, input_tokens, output_tokens, cost_usd, model_calls) VALUES "
                             "(?,?,1,?,'analyst','ANALYZING','completed',?,?,100,20,0.001,1)",
                             (run, f"s{step}", tenant, store_now(), store_now()))
        conn.execute("COMMIT")
        per_step_ms = _per_call_us(lambda: allowance(store, "acme"), 200) / 1000
        quota = allowance(store, "acme")
        per_call_us = _per_call_us(lambda: quota.refusal(123_456, 0.42), calls)
        limiter = RateLimiter()
        limit_us = _per_call_us(lambda: limiter.reserve("acme", 10**9), calls)
    return {"steps_in_store": steps, "per_model_call_check_us": round(per_call_us, 3),
            "per_step_allowance_ms": round(per_step_ms, 3), "rate_limiter_reserve_us": round(limit_us, 3)}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=20_000)
    print(json.dumps(measure(parser.parse_args().steps), indent=2))
