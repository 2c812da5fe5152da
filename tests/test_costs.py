"""Cost tracking: what aigentflow records per call matches the providers' reported usage x the cost map's
prices (> 99%: measured by benchmarks/cost_accuracy.py, fallbacks included), and `aigentflow costs` and
`aigentflow status --json` show it per run, tenant, model and step."""

from __future__ import annotations

import json
from pathlib import Path

from aigentflow.project.paths import ProjectPaths
from aigentflow.run.statemachine import State
from aigentflow.store.records import ModelUsage, StepUsage
from aigentflow.store.sqlite import SQLiteRunStore
from benchmarks.cost_accuracy import measure
from tests.conftest import aigentflow


def test_recorded_costs_match_reported_usage_times_the_cost_map() -> None:
    report = measure(calls=60)
    assert report["accuracy_percent"] > 99, report
    assert set(report["per_model"]) == {"gpt", "claude", "llama"} and report["fallbacks"] > 0
    assert report["recorded_usd"] > 0


def test_costs_and_status_show_the_usage_per_model(sample_repo: Path) -> None:
    store = SQLiteRunStore(ProjectPaths(sample_repo).database)
    try:
        project = store.get_project()["id"]
        run = store.create_run(project_id=project, request="r", model="gpt", settings={"model": {"name": "gpt"}},
                               flags={}, tenant_id="acme")
        step = store.begin_step(run.id, "analyze", "analyst", State.ANALYZING)
        store.complete_step(step, output={}, usage=StepUsage(1200, 300, 0.0023, 2, [], [
            ModelUsage("gpt", "openai", 1, 1000, 200, 0.00027),
            ModelUsage("claude", "anthropic", 1, 200, 100, 0.00203)]),
            artifacts=[], expected_version=run.version, to_state="PLANNING")
    finally:
        store.close()
    by_model = aigentflow("costs", "--by", "model", "--json", cwd=sample_repo)
    assert by_model.returncode == 0, by_model.stderr
    data = json.loads(by_model.stdout)
    assert {r["model"]: r["cost_usd"] for r in data["rows"]} == {"gpt": 0.00027, "claude": 0.00203}
    assert data["total_cost_usd"] == 0.0023
    tenants = json.loads(aigentflow("costs", "--by", "tenant", "--json", cwd=sample_repo).stdout)
    assert [(r["tenant_id"], r["runs"], r["cost_usd"]) for r in tenants["rows"]] == [("acme", 1, 0.0023)]
    text = aigentflow("costs", cwd=sample_repo)
    assert run.id in text.stdout and "$0.002300" in text.stdout
    status = json.loads(aigentflow("status", run.id, "--json", cwd=sample_repo).stdout)
    assert {r["model"] for r in status["costs"]["by_model"]} == {"gpt", "claude"}
    bad = aigentflow("costs", "--by", "day", cwd=sample_repo)
    assert bad.returncode == 2 and "run, tenant, model, step" in bad.stderr
