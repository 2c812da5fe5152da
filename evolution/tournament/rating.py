"""TrueSkill ratings of role versions (the ``trueskill`` package), one environment for everything.

Updates are order-dependent, so exactly one owner applies them, one recorded match at a time, in the
order the matches were recorded (``store.record_match``). The rest is arithmetic on (mu, sigma)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import trueskill

MU = 25.0
SIGMA = MU / 3
BETA = SIGMA / 2
TAU = SIGMA / 100
DRAW_PROBABILITY = 0.10
Z95 = 1.959963984540054

ENV = trueskill.TrueSkill(mu=MU, sigma=SIGMA, beta=BETA, tau=TAU, draw_probability=DRAW_PROBABILITY)

OUTCOMES = ("a", "b", "draw")
"""A match's outcome: version ``a`` won, ``b`` won, or a draw."""


@dataclass(frozen=True)
class Skill:
    mu: float = MU
    sigma: float = SIGMA

    @property
    def conservative(self) -> float:
        """mu - 3 sigma: what the leaderboard sorts by (a new version starts at 0)."""
        return self.mu - 3 * self.sigma

    @property
    def interval(self) -> tuple[float, float]:
        """The 95% interval of the skill."""
        return (self.mu - Z95 * self.sigma, self.mu + Z95 * self.sigma)


def update(a: Skill, b: Skill, outcome: str) -> tuple[Skill, Skill]:
    """The two ratings after one match between ``a`` and ``b``."""
    if outcome not in OUTCOMES:
        raise ValueError(f"outcome {outcome!r}: one of {OUTCOMES}")
    ra, rb = ENV.create_rating(a.mu, a.sigma), ENV.create_rating(b.mu, b.sigma)
    if outcome == "b":
        new_b, new_a = trueskill.rate_1vs1(rb, ra, env=ENV)
    else:
        new_a, new_b = trueskill.rate_1vs1(ra, rb, drawn=outcome == "draw", env=ENV)
    return Skill(new_a.mu, new_a.sigma), Skill(new_b.mu, new_b.sigma)


def _cdf(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def p_better(candidate: Skill, incumbent: Skill) -> float:
    """P(the candidate's true skill is above the incumbent's), from both posteriors."""
    spread = math.sqrt(candidate.sigma ** 2 + incumbent.sigma ** 2)
    return _cdf((candidate.mu - incumbent.mu) / spread)


def win_probability(a: Skill, b: Skill) -> float:
    """P(``a`` outperforms ``b`` in one match): the skill gap over both sigmas and two performances' beta."""
    spread = math.sqrt(a.sigma ** 2 + b.sigma ** 2 + 2 * BETA ** 2)
    return _cdf((a.mu - b.mu) / spread)


def match_quality(a: Skill, b: Skill) -> float:
    """TrueSkill's draw-probability measure of how even a pairing is (1 = perfectly even)."""
    return trueskill.quality_1vs1(ENV.create_rating(a.mu, a.sigma), ENV.create_rating(b.mu, b.sigma), env=ENV)
