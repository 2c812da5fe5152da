"""Tournaments (evolution/tournament): the benchmark suite played offline through the replay cassette,
graded by hidden tests in the sandbox; matches as Ray tasks on the session's head; ratings and results in
evolution.db; kill -9 mid-tournament; promotion; bad input. Real git, SQLite, Ray and subprocesses."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from aigentflow.exceptions import UsageError
from aigentflow.project.paths import ProjectPaths
from evolution.tournament import store
from evolution.tournament.rating import Skill
from evolution.tournament.record import QUALITY, ROLE
from evolution.tournament.tasks import load_suite
from tests.conftest import _bin, aigentflow, cli_env

ROLE_ARGS = ("tournament", "run", "--role", ROLE)


def run_json(repo: Path, *args: str, timeout: float = 240) -> tuple[int, dict]:
    done = aigentflow(*args, "--json", cwd=repo, timeout=timeout)
    return done.returncode, (json.loads(done.stdout) if done.stdout.strip().startswith("{")
                             else {"err": done.stderr, "out": done.stdout})


def recorded(repo: Path) -> list[dict]:
    db = repo / ".aigentflow" / "evolution.db"
    if not db.exists():
        return []
    with sqlite3.connect(db) as connection:
        connection.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in connection.execute("SELECT * FROM matches ORDER BY seq")]
        except sqlite3.OperationalError:
            return []


def test_suite_has_twelve_python_and_javascript_tasks_each_version_answered_offline(sample_repo: Path) -> None:
    from actors import load_class
    from evolution.tournament.play import agent_call, grade
    from evolution.tournament.runner import DEFAULT_MODEL, model_spec
    from evolution.tournament.versions import playable

    suite = load_suite()
    assert len(suite) >= 12 and {t.language for t in suite.values()} == {"python", "javascript"}
    versions = playable(ProjectPaths(sample_repo))
    assert set(QUALITY) <= set(versions.version_names(ROLE)), "built-in 1.0.0 and both shipped variants"
    model = model_spec(DEFAULT_MODEL, ProjectPaths(sample_repo))
    scores = {}
    for task in suite.values():
        for version in QUALITY:
            spec = versions.spec(ROLE, version)
            result = load_class(spec.implementation)().run(agent_call(task, spec, versions.layers, model, "t"), None)
            assert result.ok, f"{task.id} {version}: {result.error}"
            scores[task.id, version] = result.output["edits"]
    # Grading is real: a version's answer passes every hidden test exactly where the script made it right.
    for task_id, version in (("py-search", "1.0.0"), ("py-search", "1.2.0"), ("js-rename", "1.0.0"),
                             ("js-rename", "1.2.0")):
        graded = grade(suite[task_id], scores[task_id, version], {})
        assert (graded["score"] == 1.0) == (task_id not in QUALITY[version]), (task_id, version, graded)
        assert graded["isolation"] == "bwrap"


def test_tournament_plays_rates_and_traces_matches(sample_repo: Path, ray_address: str) -> None:
    code, summary = run_json(sample_repo, *ROLE_ARGS, "--versions", "1.0.0,1.1.0", "--matches", "4",
                             "--tasks", "py-remove,js-remove", "--address", ray_address)
    assert code == 0 and "recorded" in summary, summary
    assert summary["recorded"] == 4 and summary["status"] == "finished"
    matches = recorded(sample_repo)
    assert [m["task_id"] for m in matches] and {m["task_id"] for m in matches} == {"py-remove", "js-remove"}
    assert all(m["outcome"] != "draw" and m["score_a"] != m["score_b"] for m in matches), \
        "1.1.0 misses both tasks (per its recording), 1.0.0 solves both"
    code, board = run_json(sample_repo, "tournament", "leaderboard")
    rows = {r["version"]: r for r in board["ratings"]}
    assert rows["1.0.0"]["wins"] == 4 and rows["1.1.0"]["losses"] == 4 and rows["1.0.0"]["matches"] == 4
    assert rows["1.0.0"]["mu"] > 25 > rows["1.1.0"]["mu"] and rows["1.0.0"]["sigma"] < 25 / 3
    low, high = rows["1.0.0"]["ci95"]
    assert low < rows["1.0.0"]["mu"] < high and rows["1.0.0"]["conservative"] == pytest.approx(
        rows["1.0.0"]["mu"] - 3 * rows["1.0.0"]["sigma"])
    text = aigentflow("tournament", "leaderboard", cwd=sample_repo).stdout
    assert "mu-3sigma" in text and "1.1.0" in text
    done = aigentflow("traces", "query", "SELECT name, count(*) AS n FROM spans WHERE kind = 'tournament' "
                      "GROUP BY name", "--json", cwd=sample_repo)
    assert done.returncode == 0, done.stderr
    assert '"n": 4' in done.stdout and "tournament_match backend_developer" in done.stdout


def test_killed_tournament_resumes_without_losing_or_repeating_a_match(sample_repo: Path, ray_address: str) -> None:
    args = [*ROLE_ARGS, "--versions", "1.0.0,1.2.0", "--matches", "10", "--address", ray_address]
    child = subprocess.Popen([_bin("aigentflow"), *args], cwd=sample_repo, env=cli_env(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 180
    while len(recorded(sample_repo)) < 2 and time.time() < deadline and child.poll() is None:
        time.sleep(0.2)
    os.killpg(child.pid, signal.SIGKILL)
    child.wait()
    before = recorded(sample_repo)
    assert 2 <= len(before) < 10, "killed mid-tournament"
    code, summary = run_json(sample_repo, *args)
    assert code == 0, summary
    assert summary["resumed_from"] == len(before) and summary["recorded"] == 10
    after = recorded(sample_repo)
    assert len(after) == 10 and len({m["key"] for m in after}) == 10
    assert after[:len(before)] == before, "recorded results are kept as they were"
    rows = {r["version"]: r for r in store.ratings(sample_repo, ROLE)}
    assert rows["1.0.0"]["matches"] == rows["1.2.0"]["matches"] == 10, "each match rated exactly once"


def test_record_match_is_idempotent_by_key(tmp_path: Path) -> None:
    match = {"key": "t-x/0", "tournament_id": "t-x", "number": 0, "role": ROLE, "task_id": "py-get",
             "version_a": "1.0.0", "version_b": "1.1.0", "score_a": 1.0, "score_b": 0.0, "outcome": "a"}
    assert store.record_match(tmp_path, match) is True
    first = store.ratings(tmp_path, ROLE)
    assert store.record_match(tmp_path, match) is False
    assert store.ratings(tmp_path, ROLE) == first
    winner = next(r for r in first if r["version"] == "1.0.0")
    assert winner["mu"] > Skill().mu and winner["wins"] == 1


@pytest.mark.parametrize(("args", "says"), [
    (("--role", "nobody"), "there is no role 'nobody'"),
    (("--role", ROLE, "--versions", "1.0.0,9.9.9"), "has no version '9.9.9'"),
    (("--role", ROLE, "--versions", "1.0.0"), "at least two versions"),
    (("--role", ROLE, "--versions", "1.0.0,1.1.0", "--tasks", "nope"), "no benchmark task nope"),
])
def test_bad_input_is_refused_and_nothing_recorded(sample_repo: Path, args: tuple[str, ...], says: str) -> None:
    done = aigentflow("tournament", "run", *args, cwd=sample_repo)
    assert done.returncode == 2 and says in done.stderr, done.stderr
    assert store.tournaments(sample_repo) == []


def test_a_task_whose_grading_cannot_run_is_refused(sample_repo: Path, ray_address: str) -> None:
    task = sample_repo / ".aigentflow" / "benchmarks" / "broken"
    (task / "hidden").mkdir(parents=True)
    (task / "hidden" / "t.py").write_text("def test_x():\n    pass\n")
    (task / "task.toml").write_text(
        'title = "x"\nlanguage = "python"\nsnapshot = "python-tasks"\nrole = "backend_developer"\n'
        'request = "x"\ndescription = "x"\ngrade_command = "no-such-runner t.py"\n')
    done = aigentflow(*ROLE_ARGS, "--versions", "1.0.0,1.1.0", "--tasks", "broken", "--address", ray_address,
                      cwd=sample_repo)
    assert done.returncode == 2 and "broken" in done.stderr and "cannot be graded" in done.stderr, done.stderr
    assert store.tournaments(sample_repo) == []


def test_promotion_needs_matches_confidence_and_approval(tmp_path: Path, sample_repo: Path) -> None:
    from evolution.tournament.promotion import Rated, approve, decide, evaluate

    strong, weak = Rated("1.2.0", Skill(32.0, 1.5), 40), Rated("1.0.0", Skill(24.0, 1.5), 40)
    assert evaluate(strong, weak).promote
    few = evaluate(Rated("1.2.0", Skill(32.0, 1.5), 5), weak)
    assert not few.promote and "5 matches played, at least 12 needed" in few.reasons
    close = evaluate(Rated("1.2.0", Skill(24.5, 1.5), 40), weak)
    assert not close.promote and close.p_better < 0.95

    paths = ProjectPaths(sample_repo)
    for number in range(14):
        store.record_match(sample_repo, {"key": f"t-p/{number}", "tournament_id": "t-p", "number": number,
                                         "role": ROLE, "task_id": "py-get", "version_a": "1.2.0",
                                         "version_b": "1.0.0", "score_a": 1.0, "score_b": 0.5, "outcome": "a"})
    aigentflow("config", "set", "flags.evolution.requireApproval", "true", cwd=sample_repo)
    done = aigentflow("tournament", "promote", ROLE, "1.2.0", cwd=sample_repo)
    assert done.returncode == 0 and "awaiting_approval" in done.stdout, done.stdout + done.stderr
    with pytest.raises(UsageError, match="has no rating yet"):
        decide(paths, ROLE, "1.1.0")
    assert approve(paths, ROLE, "1.2.0")["status"] == "approved"
    refused = aigentflow("tournament", "approve", ROLE, "1.1.0", cwd=sample_repo)
    assert refused.returncode == 2 and "no promotion awaiting approval" in refused.stderr


def test_simulated_variants_are_ranked_and_only_the_better_promoted() -> None:
    from evolution.tournament.simulate import simulate

    result = simulate(trials=40, seed=3)
    assert result["kendall_tau_mean"]["36"] >= 0.9
    assert result["best_promoted_rate"] >= 0.95 and result["worse_promoted_rate"] == 0.0
