"""Tournaments of simulated variants with a known latent skill, through the real rating (``rating.update``,
applied in match order as the store does) and promotion (``promotion.evaluate``) code.

A match between variants of latent skill s_a and s_b draws each one's performance from
N(s, ``noise``) (``noise`` = TrueSkill's beta by default); the better performance wins, a gap under
``draw_margin`` is a draw. The schedule is the runner's: the pairs of variants in turn. Used by
``benchmarks/evolution_sim.py`` and ``tests/test_tournament.py``."""

from __future__ import annotations

import itertools
import random
from dataclasses import dataclass, field

from evolution.tournament.promotion import Rated, evaluate
from evolution.tournament.rating import BETA, Skill, update

DEFAULT_SKILLS = (17.0, 21.0, 25.0, 29.0, 33.0, 37.0)
"""Latent skills of the variants; 25 is the incumbent's."""
INCUMBENT = 25.0


@dataclass
class Trial:
    taus: dict[int, float] = field(default_factory=dict)
    """Kendall tau of the leaderboard (by mu) against the truth after N matches a variant."""
    promoted: list[float] = field(default_factory=list)
    """Latent skills of the variants the promotion criteria promote over the incumbent."""


def kendall_tau(ranked: list[float], truth: list[float]) -> float:
    """Kendall's tau-a between two orderings given as scores of the same items (no ties expected)."""
    pairs = list(itertools.combinations(range(len(truth)), 2))
    agree = sum(1 if (ranked[i] - ranked[j]) * (truth[i] - truth[j]) > 0 else -1 for i, j in pairs)
    return agree / len(pairs)


def play(a: float, b: float, rng: random.Random, noise: float, draw_margin: float) -> str:
    gap = rng.gauss(a, noise) - rng.gauss(b, noise)
    if abs(gap) < draw_margin:
        return "draw"
    return "a" if gap > 0 else "b"


def trial(skills: tuple[float, ...], per_variant: int, rng: random.Random, *, noise: float = BETA,
          draw_margin: float = 0.5, checkpoints: tuple[int, ...] = (12, 24, 36),
          min_matches: int = 12) -> Trial:
    count = len(skills)
    ratings = [Skill() for _ in skills]
    played = [0] * count
    pairs = list(itertools.combinations(range(count), 2))
    result = Trial()
    total = per_variant * count // 2
    marks = {c * count // 2: c for c in checkpoints}
    for number in range(total):
        i, j = pairs[number % len(pairs)]
        outcome = play(skills[i], skills[j], rng, noise, draw_margin)
        ratings[i], ratings[j] = update(ratings[i], ratings[j], outcome)
        played[i] += 1
        played[j] += 1
        if number + 1 in marks:
            result.taus[marks[number + 1]] = kendall_tau([r.mu for r in ratings], list(skills))
    incumbent = skills.index(INCUMBENT)
    champion = Rated("incumbent", ratings[incumbent], played[incumbent])
    for k, skill in enumerate(skills):
        if k != incumbent and evaluate(Rated(str(skill), ratings[k], played[k]), champion,
                                       min_matches=min_matches).promote:
            result.promoted.append(skill)
    return result


def simulate(trials: int = 200, per_variant: int = 36, skills: tuple[float, ...] = DEFAULT_SKILLS,
             seed: int = 7, **options: float) -> dict[str, object]:
    rng = random.Random(seed)
    runs = [trial(skills, per_variant, rng, **options) for _ in range(trials)]  # type: ignore[arg-type]
    best, worse = max(skills), [s for s in skills if s < INCUMBENT]
    checkpoints = sorted({c for r in runs for c in r.taus})
    return {
        "trials": trials, "variants": len(skills), "latent_skills": list(skills), "matches_per_variant": per_variant,
        "kendall_tau_mean": {str(c): sum(r.taus[c] for r in runs) / trials for c in checkpoints},
        "kendall_tau_p10": {str(c): sorted(r.taus[c] for r in runs)[trials // 10] for c in checkpoints},
        "best_promoted_rate": sum(best in r.promoted for r in runs) / trials,
        "worse_promoted_rate": sum(any(s in worse for s in r.promoted) for r in runs) / trials,
        "promoted_rate_by_skill": {str(s): sum(s in r.promoted for r in runs) / trials for s in skills
                                   if s != INCUMBENT},
    }


def canary_trial(rng: random.Random, candidate_success: float, incumbent_success: float = 0.95,
                 percent: int = 10, most: int = 400) -> tuple[int, int] | None:
    """Runs (all of them, candidate's and incumbent's) until the real stage decision
    (``evolution.rollout.canary.judge``, which the watcher makes after every run) rolls the canary back;
    None if it never does within ``most`` runs; (all runs, the candidate's runs). Runs are routed by the
    real sticky bucket of a random run id; ``percent`` 0 is the shadow stage (every run plays both)."""
    from aigentflow.roles.canary import bucket
    from evolution.rollout.canary import judge

    stage = {"stage": "shadow", "percent": 0} if percent == 0 else {"stage": "canary", "percent": percent}
    runs: dict[str, list[dict[str, object]]] = {"candidate": [], "incumbent": []}
    for number in range(1, most + 1):
        sides = ["candidate", "incumbent"] if percent == 0 else \
            ["candidate" if bucket(f"{rng.getrandbits(64):016x}") < percent else "incumbent"]
        for side in sides:
            rate = candidate_success if side == "candidate" else incumbent_success
            runs[side].append({"ok": rng.random() < rate, "cost_usd": 0.0, "seconds": None})
        if judge(stage, runs["candidate"], runs["incumbent"])[0] == "rollback":  # type: ignore[arg-type]
            return number, len(runs["candidate"])
    return None


def simulate_canary(trials: int = 200, seed: int = 11, regressed: float = 0.5, percent: int = 10,
                    runs_before_pass: int = 60) -> dict[str, object]:
    """How soon a regressed candidate is rolled back at ``percent``, and how often one as good as the
    incumbent is rolled back (wrongly) within ``runs_before_pass`` runs."""
    rng = random.Random(seed)
    caught = [canary_trial(rng, regressed, percent=percent) for _ in range(trials)]
    wrongly = [canary_trial(rng, 0.95, percent=percent, most=runs_before_pass) for _ in range(trials)]
    found = sorted(n[0] for n in caught if n is not None)
    theirs = sorted(n[1] for n in caught if n is not None)
    return {
        "canary_percent": percent, "canary_regressed_success": regressed,
        "canary_rollback_runs_median": found[len(found) // 2] if found else None,
        "canary_rollback_runs_p90": found[int(len(found) * 0.9)] if found else None,
        "canary_rollback_candidate_runs_median": theirs[len(theirs) // 2] if theirs else None,
        "canary_rollback_candidate_runs_p90": theirs[int(len(theirs) * 0.9)] if theirs else None,
        "canary_rolled_back_rate": len(found) / trials,
        "canary_false_rollback_rate": sum(n is not None for n in wrongly) / trials,
        **({} if percent == 0 else {"shadow_" + k.removeprefix("canary_"): v for k, v in simulate_canary(
            trials, seed, regressed, percent=0, runs_before_pass=runs_before_pass).items()
            if k in ("canary_rollback_runs_median", "canary_rollback_runs_p90", "canary_false_rollback_rate")}),
    }
