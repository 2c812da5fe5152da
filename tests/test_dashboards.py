"""The health dashboards' figures, computed from a real project: runs driven through the engine in
this process (the replay model, real SQLite and Parquet traces, a real git repository), and build
results recorded through the real store. `aigentflow dashboards` as a user runs it."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from aigentflow.project.paths import ProjectPaths
from aigentflow.store.records import StepUsage
from aigentflow.store.sqlite import SQLiteRunStore
from evolution.dashboards import compute, load
from evolution.dashboards.figure import FAILING, NO_DATA, OK
from tests.conftest import aigentflow, cli_env, commit_files
from tests.ui_support import SECRET, drive_run, new_project, user_config_env

MINER_PRESENT = importlib.util.find_spec("evolution.patterns") is not None


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """Three real runs: one completed, one FAILED (a request the cassette never recorded), one whose
    architect crashed."""
    base = tmp_path_factory.mktemp("dash")
    with user_config_env(base / "user-config"):
        repo = new_project(base / "project")
        runs = {"completed": drive_run(repo),
                "failed": drive_run(repo, f"Add a sync command using token {SECRET}"),
                "crashed": drive_run(repo, crash_at="architect")}
    return repo, runs


def figures_by_key(repo: Path, latency: list[float] | None = None, **kwargs) -> dict:
    phases = compute(load(ProjectPaths(repo), **kwargs), latency)
    return {f.key: f for figures in phases.values() for f in figures}


def test_mvp_figures_from_real_runs(project) -> None:
    repo, _ = project
    figures = figures_by_key(repo, latency=[120.0, 150.0, 3100.0])
    assert figures["system_health"].status == OK and figures["system_health"].value == "up"
    error_rate = figures["error_rate"]
    assert (error_rate.value, error_rate.display, error_rate.status) == (2 / 3, "66.7%", FAILING)
    assert error_rate.source == "2 of 3 finished runs FAILED"
    latency = figures["cli_latency_p95"]  # nearest-rank p95 of 3 samples: the slowest
    assert (latency.value, latency.display, latency.status) == (3.1, "3.10 s", FAILING)
    crashes = figures["crashes_per_day"]
    assert (crashes.value, crashes.status) == (1, FAILING), crashes
    assert "1 agent crash(es)" in crashes.source


def test_crashes_count_only_the_last_day(project) -> None:
    repo, _ = project
    now = load(ProjectPaths(repo)).now
    later = figures_by_key(repo, now=now + timedelta(days=2))
    assert (later["crashes_per_day"].value, later["crashes_per_day"].status) == (0, OK)


def test_agent_success_and_trace_capture_from_real_runs(project) -> None:
    repo, runs = project
    store = SQLiteRunStore(ProjectPaths(repo).database, readonly=True)
    steps = [s for r in runs.values() for s in store.steps(r) if s.status in ("completed", "failed")]
    store.close()
    ok = sum(1 for s in steps if s.status == "completed")
    figures = figures_by_key(repo)
    success = figures["agent_success_rate"]
    assert success.value == ok / len(steps) and success.status == FAILING  # 2 of the steps failed
    assert success.source.startswith(f"{ok} of {len(steps)} step attempts completed")
    capture = figures["trace_capture_rate"]
    assert (capture.value, capture.display, capture.status) == (1.0, "100%", OK), capture.source
    assert "finished runs 3/3" in capture.source


def test_lost_trace_segment_shows_in_capture_rate(project, tmp_path: Path) -> None:
    repo, _ = project
    copy = tmp_path / "copy"
    shutil.copytree(repo, copy)
    segments = sorted((ProjectPaths(copy).traces_dir).rglob("*.parquet"))
    assert segments
    segments[0].unlink()
    capture = figures_by_key(copy)["trace_capture_rate"]
    assert capture.value < 1.0 and capture.status == FAILING, capture


def test_figures_without_a_source_say_no_data(project) -> None:
    repo, _ = project
    figures = figures_by_key(repo)
    for key in ("generated_agent_approval_rate", "tournament_matches_per_week", "evolution_overhead",
                "worktree_conflicts_per_day", "build_pass_rate", "test_coverage", "review_approval_rate"):
        assert (figures[key].value, figures[key].display, figures[key].status) == (None, NO_DATA, NO_DATA), key
    assert figures["cli_latency_p95"].status == NO_DATA  # not measured
    if not MINER_PRESENT:
        assert figures["patterns_per_week"].status == NO_DATA
        assert "not part of this build" in figures["patterns_per_week"].source


def record_build_run(repo: Path) -> str:
    """A run whose build, test and merge steps are recorded through the store, as the Orchestrator
    records them: 4 task builds (3 passed), 3 review rounds (2 approved), 2 conflicts (1 resolved),
    the suite's coverage 85% (+2.5)."""
    store = SQLiteRunStore(ProjectPaths(repo).database)
    try:
        run = store.create_run(project_id=store.get_project()["id"], request="build it", model="replay/demo",
                               settings={}, flags={})
        tasks = {
            "T1": {"steps": [{"role": "tester", "status": "failed"}, {"role": "backend_developer", "status": "passed"}],
                   "reviews": [{"verdict": "request_changes"}, {"verdict": "approve"}]},
            "T2": {"steps": [{"role": "tester", "status": "failed"}, {"role": "backend_developer", "status": "failed"},
                             {"role": "bug_fixer", "status": "passed"}, {"role": "bug_fixer", "status": "passed"}],
                   "reviews": [{"verdict": "approve"}]},
        }
        outputs = [
            ("build", "backend_developer", "BUILDING", {"tasks": tasks, "conflicts": [
                {"resolution": "resolved"}, {"resolution": "needs_human"}]}),
            ("test", "tester", "TESTING", {"ok": True, "coverage": {"measured": True, "after": 85.0, "delta": 2.5}}),
            ("merge", "git_agent", "MERGING", {"conflicts": []}),
        ]
        for name, role, state, output in outputs:
            run = store.get_run(run.id)
            step = store.begin_step(run.id, name, role, state)
            store.complete_step(step, output=output, usage=StepUsage(), artifacts=[],
                                expected_version=run.version, to_state=state)
        return run.id
    finally:
        store.close()


def test_v1_figures_from_recorded_builds_agree_with_status(project, tmp_path: Path) -> None:
    repo, _ = project
    copy = tmp_path / "copy"
    shutil.copytree(repo, copy)
    run_id = record_build_run(copy)
    figures = figures_by_key(copy)
    build = figures["build_pass_rate"]
    assert (build.value, build.display, build.status) == (0.75, "75%", FAILING)
    assert build.source == "3 of 4 task builds passed their tests"
    review = figures["review_approval_rate"]
    assert (review.display, review.status) == ("66.7%", FAILING)
    coverage = figures["test_coverage"]
    assert (coverage.value, coverage.display, coverage.status) == (85.0, "85%", OK)
    assert "+2.5 points" in coverage.source
    conflicts = figures["worktree_conflicts_per_day"]
    assert (conflicts.value, conflicts.display, conflicts.status) == (2, "2/day", OK)
    assert "1 resolved" in conflicts.source
    # `aigentflow status` computes the same figures for this run, the only one that built
    status = aigentflow("status", run_id, "--json", cwd=copy)
    assert status.returncode == 0, status.stderr
    metrics = json.loads(status.stdout)["metrics"]
    assert metrics["build_pass_rate"] == build.value
    assert metrics["review_approval_rate"] == round(review.value, 3)
    assert metrics["coverage_percent"] == coverage.value


def test_dashboards_command_prints_every_figure(project) -> None:
    repo, _ = project
    done = aigentflow("dashboards", "--project", str(repo), cwd=repo.parent)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    for title in ("MVP dashboard", "v1.0 dashboard", "v2.0 dashboard", "Enterprise dashboard"):
        assert title in out
    lines = {line.split("  ")[0]: line for line in out.splitlines()}
    assert lines["Error rate"].split()[2:6] == ["66.7%", "<", "1%", "FAILING"]
    assert lines["Trace capture rate"].split()[3:5] == ["100%", "100%"]
    assert "no data" in lines["Tournament match rate"]
    latency = lines["CLI latency p95"].split()
    assert latency[4] == "s" and float(latency[3]) > 0, "measured by timing the CLI"
    assert SECRET not in out


def test_dashboards_json_matches_the_figures(project) -> None:
    repo, _ = project
    done = aigentflow("dashboards", "--json", "--no-latency", cwd=repo)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["project"] == str(repo)
    assert {phase: len(figures) for phase, figures in report["dashboards"].items()} == {
        "MVP": 4, "v1.0": 5, "v2.0": 5, "Enterprise": 5}
    keyed = {f["key"]: f for figures in report["dashboards"].values() for f in figures}
    expected = figures_by_key(repo)
    for key, figure in keyed.items():
        if key == "flag_eval_latency_p99":  # timed anew each time
            assert figure["status"] == expected[key].status and figure["value"] > 0
            continue
        assert (figure["value"], figure["status"], figure["threshold"]) == (
            expected[key].value, expected[key].status, expected[key].threshold), key


def test_dashboards_bad_project_exit_2_and_nothing_written(tmp_path: Path) -> None:
    missing = aigentflow("dashboards", "--project", str(tmp_path / "nowhere"), cwd=tmp_path)
    assert missing.returncode == 2 and "does not exist" in missing.stderr
    plain = commit_files(tmp_path / "plain", {"README.md": "hi\n"})
    before = sorted(p.name for p in plain.iterdir())
    done = aigentflow("dashboards", cwd=plain)
    assert done.returncode == 2 and "aigentflow init" in done.stderr, done.stderr
    assert sorted(p.name for p in plain.iterdir()) == before, "nothing created"
    outside = aigentflow("dashboards", cwd=tmp_path)
    assert outside.returncode == 2 and "not inside a git repository" in outside.stderr


def test_dashboards_import_neither_ray_nor_litellm(project) -> None:
    repo, _ = project
    code = ("import sys\nfrom aigentflow.cli.main import app\n"
            "try:\n    app(['dashboards', '--no-latency', '--json'])\nexcept SystemExit:\n    pass\n"
            "print('IMPORTED', 'ray' in sys.modules, 'litellm' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], cwd=repo, capture_output=True, text=True, env=cli_env(),
                          timeout=120, check=False)
    assert done.stdout.strip().endswith("IMPORTED False False"), done.stdout[-500:] + done.stderr[-2000:]


# -- the Enterprise dashboard --------------------------------------------------------------------------------


def plant_model_usage(repo: Path, model: str, calls: list[tuple[int, int, float]]) -> str:
    """A run whose step's model calls (input tokens, output tokens, recorded cost) are recorded through the store,
    as the engine records them."""
    from aigentflow.store.records import ModelUsage

    store = SQLiteRunStore(ProjectPaths(repo).database)
    try:
        run = store.create_run(project_id=store.get_project()["id"], request="priced", model=model, settings={},
                               flags={})
        for number, (tokens_in, tokens_out, cost) in enumerate(calls):
            step = store.begin_step(run.id, f"analyze{number}", "analyst", "ANALYZING")
            store.fail_step(step, "planted", StepUsage(tokens_in, tokens_out, cost, 1, [],
                                                       [ModelUsage(model, "openai", 1, tokens_in, tokens_out, cost)]))
        return run.id
    finally:
        store.close()


def test_enterprise_figures_from_dsars_costs_compliance_and_flags(tmp_path: Path) -> None:
    from aigentflow.models.catalog import cost_map
    from evolution.dashboards.enterprise import FLAG_ROUNDS

    with user_config_env(tmp_path / "user-config"):
        repo = new_project(tmp_path / "project")
        figures = figures_by_key(repo)
        dsar = figures["dsar_completion_days"]
        assert dsar.status == NO_DATA and "gdpr export" in dsar.source
        assert figures["cost_tracking_accuracy"].status == NO_DATA

        exported = aigentflow("gdpr", "export", "alice@example.com", "--json", cwd=repo)
        assert exported.returncode == 0, exported.stderr
        request = json.loads(exported.stdout)["request"]
        prices = cost_map()["gpt-4o-mini"]
        exact = [(n * 1000, n * 100,
                  n * 1000 * prices["input_cost_per_token"] + n * 100 * prices["output_cost_per_token"])
                 for n in (1, 7, 30)]
        plant_model_usage(repo, "openai/gpt-4o-mini", exact)
        drive_run(repo)  # replayed calls: recorded at no cost, left out of the accuracy

        figures = figures_by_key(repo)
        dsar = figures["dsar_completion_days"]
        assert dsar.status == OK and dsar.value == request["duration_s"] / 86400
        assert request["id"] in dsar.source and "1 completed, 0 open" in dsar.source
        cost = figures["cost_tracking_accuracy"]
        assert (cost.value, cost.display, cost.status) == (1.0, "100%", OK), cost
        assert "3 call(s) of openai/gpt-4o-mini" in cost.source

        compliance = json.loads(aigentflow("compliance", "status", "--json", cwd=repo).stdout)
        score = figures["compliance_score"]
        assert score.value == compliance["score_percent"]
        assert score.status == (OK if compliance["score_percent"] > 95 else FAILING)
        assert f"{compliance['counts']['pass']} of" in score.source

        flags = json.loads(aigentflow("flags", "list", "--json", cwd=repo).stdout)
        latency = figures["flag_eval_latency_p99"]
        assert latency.status == OK and 0 < latency.value < 10, latency
        assert f"{len(flags)} flags x {FLAG_ROUNDS} subjects" in latency.source

        # one call recorded 10% over its price; a request left open past the 30 days
        tokens_in, tokens_out = 50_000, 5_000
        right = tokens_in * prices["input_cost_per_token"] + tokens_out * prices["output_cost_per_token"]
        plant_model_usage(repo, "openai/gpt-4o-mini", [(tokens_in, tokens_out, right * 1.10)])
        from aigentflow.gdpr.requests import open_request

        waiting = open_request(ProjectPaths(repo).database, "f" * 64, "erase")
        later = figures_by_key(repo, now=datetime.now(UTC) + timedelta(days=31))
        expected_total = sum(c for _, _, c in exact) + right
        cost = later["cost_tracking_accuracy"]
        assert abs(cost.value - (1 - 0.10 * right / expected_total)) < 1e-9 and cost.status == FAILING
        dsar = later["dsar_completion_days"]
        assert dsar.status == FAILING and dsar.value > 30 and waiting.id in dsar.source and "1 open" in dsar.source


def test_tenant_isolation_figure_is_the_probes_or_says_it_is_missing(project) -> None:
    repo, _ = project
    figure = figures_by_key(repo)["tenant_isolation_score"]
    if importlib.util.find_spec("aigentflow.tenants.isolation") is None:
        assert (figure.status, figure.value, figure.display) == (NO_DATA, None, "no data")
        assert figure.source == "tenant isolation probe not installed"
        return
    from aigentflow.tenants.isolation import measure

    result = measure(repo)
    assert figure.source == f"{result['checked']} isolation checks, {result['leaks']} leak(s) found"
    assert figure.status == (OK if result["leaks"] == 0 else FAILING)
