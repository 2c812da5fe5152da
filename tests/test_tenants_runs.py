"""A tenant's quota stopping a run that is under way: before a step, or between two model calls of one step.
The run is left PAUSED with the refusal as its reason (never FAILED), the refusal is audited under the
tenant and its incident recorded; `aigentflow resume` refuses (before Ray) while the quota is still
exhausted, and the run completes once it is raised. The engine in-process, as in tests/test_engine.py;
the model is the demo's replay cassette (analyze: 1 call of 2730 tokens; plan: 2 calls)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aigentflow.exceptions import RunPaused
from tests.conftest import aigentflow, cli_env
from tests.test_engine import drive, start, store_of

ANALYZE_TOKENS = 2310 + 420
"""What the demo cassette's analyze call uses (in + out)."""


def tenant_with_tokens(repo: Path, tokens: int) -> None:
    for args in (("create", "acme"), ("quota", "set", "acme", "--tokens", str(tokens), "--period", "day")):
        done = aigentflow("tenants", *args, cwd=repo)
        assert done.returncode == 0, done.stderr


def refusals(store, run_id: str) -> list[tuple[str, str]]:
    return [(e.data["quota"], e.data["where"]) for e in store.audit(run_id, tenant_id="acme")
            if e.event == "quota.exhausted"]


def test_a_quota_exhausted_between_two_model_calls_pauses_the_run_resumable_once_raised(sample_repo: Path) -> None:
    tenant_with_tokens(sample_repo, ANALYZE_TOKENS + 1)  # plan starts with 1 token left: its first call goes out
    paths, run, spec = start(sample_repo, **{"run.tenant": "acme"})
    with pytest.raises(RunPaused, match="quota exhausted for tenant acme: tokens"):
        drive(paths, run, spec)
    store = store_of(paths)
    paused = store.get_run(run.id)
    assert (paused.state, paused.return_to, paused.error) == ("PAUSED", "PLANNING", None)
    reason = store.transitions(run.id)[-1].reason
    assert reason.startswith("quota exhausted for tenant acme: tokens ") and "/2731 this day; resets at " in reason
    assert "`aigentflow resume <run>`" in reason and "tenants quota set acme --tokens N --period day" in reason
    steps = {s.step: s for s in store.steps(run.id)}
    assert steps["analyze"].status == "completed"
    assert (steps["plan"].status, steps["plan"].model_calls) == ("failed", 1), "the second plan call was never made"
    assert refusals(store, run.id) == [("tokens", "model_call")]
    incidents = json.loads(aigentflow("incidents", "list", "--rule", "quota-exhausted", "--json",
                                      cwd=sample_repo).stdout)
    assert [(i["tenant_id"], i["facts"]["quota"]) for i in incidents] == [("acme", "tokens")]

    resumed = aigentflow("resume", run.id, cwd=sample_repo, env=cli_env())
    assert resumed.returncode == 2, resumed.stdout + resumed.stderr
    assert "quota exhausted for tenant acme: tokens" in resumed.stderr and f"run {run.id} stays paused" in \
        resumed.stderr
    assert "Ray" not in resumed.stdout + resumed.stderr, "refused before Ray"
    assert store.get_run(run.id).state == "PAUSED"

    assert aigentflow("tenants", "quota", "set", "acme", "--tokens", "1000000", "--period", "day",
                      cwd=sample_repo).returncode == 0
    final = drive(paths, store.get_run(run.id), spec, resume=True)
    assert final.state == "COMPLETED"
    assert {s.step: s.status for s in store.steps(run.id)} == {
        "analyze": "completed", "plan": "completed", "architect": "completed"}


def test_a_quota_exhausted_at_a_step_boundary_pauses_before_the_step_begins(sample_repo: Path) -> None:
    tenant_with_tokens(sample_repo, ANALYZE_TOKENS)  # analyze uses it all
    paths, run, spec = start(sample_repo, **{"run.tenant": "acme"})
    with pytest.raises(RunPaused, match=f"tokens {ANALYZE_TOKENS}/{ANALYZE_TOKENS} this day"):
        drive(paths, run, spec)
    store = store_of(paths)
    assert (store.get_run(run.id).state, store.get_run(run.id).return_to) == ("PAUSED", "PLANNING")
    assert [(s.step, s.status) for s in store.steps(run.id)] == [("analyze", "completed")]
    assert refusals(store, run.id) == [("tokens", "step")]
    other, other_spec = start(sample_repo)[1:]  # the default tenant has no quota: its runs go on
    assert drive(paths, other, other_spec).state == "COMPLETED"
