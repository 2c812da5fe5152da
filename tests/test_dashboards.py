"""The health dashboards' figures, computed from a real project: runs driven through the engine in
this process (the replay model, real SQLite and Parquet traces, a real git repository), and build
results recorded through the real store. `aigentflow dashboards` as a user runs it."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from datetime import timedelta
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
    for title in ("MVP dashboard", "v1.0 dashboard", "v2.0 dashboard"):
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
    assert list(report["dashboards"]) == ["MVP", "v1.0", "v2.0"]
    assert [len(figures) for figures in report["dashboards"].values()] == [4, 5, 5]
    keyed = {f["key"]: f for figures in report["dashboards"].values() for f in figures}
    expected = figures_by_key(repo)
    for key, figure in keyed.items():
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
