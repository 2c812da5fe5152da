"""Tournament efficacy and cost.

1. Simulation (``evolution.tournament.simulate``): 6 variants of known latent skill (17..37, the
   incumbent 25; one match's performance ~ N(skill, 4.17)) play the runner's round-robin schedule
   through the real TrueSkill update and promotion criteria, ``--trials`` times: the leaderboard's
   Kendall tau against the truth after 12, 24 and 36 matches a variant (goal >= 0.9 within 36), how
   often the best is promoted (goal >= 95%) and a worse one (goal < 1%).
2. Rating update cost: ``rating.update`` alone, and ``store.record_match`` (the SQLite transaction that
   stores a match with its two updates).
3. Canary: a candidate whose runs succeed half the time (the incumbent's 95%) at 10%, routed by the real
   sticky bucket and judged by the real stage analysis after every run: runs (all, and the candidate's)
   until it is rolled back (goal: within 20), and how often an equally good one is rolled back wrongly
   within 60 runs.
4. Matches per minute with the replay model: a real ``run_tournament`` of ``--matches`` matches of
   backend_developer 1.0.0 vs 1.2.0 on the shipped suite (agents, sandboxed hidden tests, Ray tasks) on
   a fresh project, on its own local Ray (or ``--address``); goal >= 60/min on 2 cores.

Prints one JSON line. ``python benchmarks/evolution_sim.py [--trials 200] [--matches 24] [--address A]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


def rating_cost(n: int = 5000) -> dict[str, float]:
    from evolution.tournament import store
    from evolution.tournament.rating import Skill, update

    a, b = Skill(), Skill()
    started = time.perf_counter()
    for number in range(n):
        a, b = update(a, b, ("a", "b", "draw")[number % 3])
    update_us = (time.perf_counter() - started) / n * 1e6
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        started = time.perf_counter()
        for number in range(300):
            store.record_match(root, {"key": f"t/{number}", "tournament_id": "t", "number": number, "role": "r",
                                      "task_id": "x", "version_a": "1", "version_b": "2", "score_a": 1.0,
                                      "score_b": 0.0, "outcome": "a"})
        record_ms = (time.perf_counter() - started) / 300 * 1e3
    return {"update_us": update_us, "record_match_ms": record_ms}


def replay_throughput(matches: int, address: str | None) -> dict[str, object]:
    from aigentflow.cli.project_cmd import initialise
    from aigentflow.project.paths import ProjectPaths
    from evolution.tournament.runner import Options, run_tournament

    with tempfile.TemporaryDirectory() as scratch:
        repo = Path(scratch) / "project"
        repo.mkdir()
        git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.invalid"]
        subprocess.run([*git, "init", "-q"], cwd=repo, check=True)
        subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "init"], cwd=repo, check=True)
        initialise(repo)
        paths = ProjectPaths(repo)
        options = Options(role="backend_developer", versions=["1.0.0", "1.2.0"], matches=2, address=address)
        run_tournament(paths, options)  # warm-up: Ray, the workers' imports (litellm), the first grading
        options.matches = matches
        options.versions = ["1.2.0", "1.0.0"]
        summary = run_tournament(paths, options)
    return {"replay_matches": summary["played_now"], "replay_seconds": summary["seconds"],
            "matches_per_minute": summary["matches_per_minute"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--matches", type=int, default=24, help="replay matches to time (0: skip)")
    parser.add_argument("--address", default=None)
    args = parser.parse_args()

    from evolution.tournament.simulate import simulate, simulate_canary

    started = time.perf_counter()
    result: dict[str, object] = {"benchmark": "evolution_sim", **simulate(trials=args.trials),
                                 **simulate_canary(trials=args.trials)}
    result["simulation_s"] = time.perf_counter() - started
    result.update(rating_cost())
    if args.matches:
        result.update(replay_throughput(args.matches, args.address))
    taus = result["kendall_tau_mean"]
    result["goals_met"] = {
        "kendall_tau_36": taus["36"] >= 0.9,  # type: ignore[index]
        "best_promoted": result["best_promoted_rate"] >= 0.95,  # type: ignore[operator]
        "worse_promoted": result["worse_promoted_rate"] < 0.01,  # type: ignore[operator]
        "canary_rollback_within_20_candidate_runs_p90":
            (result["canary_rollback_candidate_runs_p90"] or 99) <= 20,  # type: ignore[operator]
        **({"matches_per_minute": (result["matches_per_minute"] or 0) >= 60} if args.matches else {}),  # type: ignore[operator]
    }
    print(json.dumps(result, sort_keys=True))


if __name__ == "__main__":
    main()
