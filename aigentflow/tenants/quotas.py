"""Quotas: what a tenant used this period, what is left, when it resets, and the refusals.

Three enforcement points, cheapest last:

- ``admit`` (a run's preflight, before Ray; ``aigentflow resume`` too): the routed tenant must be registered
  and active, and no quota exhausted (for a new run, ``runs`` included). Refused: ``QuotaExhausted`` (exit 2).
- ``allowance`` (each step, by the engine): one read of the tenant's quotas and one indexed read of its usage
  per period; an exhausted quota pauses the run before the step.
- ``Allowance.refusal`` (each model call, in ``ModelClient``): the step carries what was left when it
  started and counts its own calls' tokens and cost down; two float comparisons, no query.

Every refusal appends a ``quota.exhausted`` audit entry under the tenant and records the incident at once
(``aigentflow incidents``' quota-exhausted rule, alerts left to the next detection).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aigentflow.exceptions import UsageError
from aigentflow.tenants.mode import routed_tenant
from aigentflow.tenants.registry import PERIOD_KINDS, RATE_KIND, require

REFUSED = "quota.exhausted"


class QuotaExhausted(UsageError):
    """A quota refused work before it started: nothing was recorded but the refusal (audit, incident)."""


def period_bounds(period: str, now: datetime) -> tuple[datetime, datetime]:
    """The UTC calendar period holding ``now``: a day from midnight, a week from Monday, a month from the 1st."""
    day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        return day, day + timedelta(days=1)
    if period == "week":
        start = day - timedelta(days=day.weekday())
        return start, start + timedelta(days=7)
    if period == "month":
        start = day.replace(day=1)
        return start, (start + timedelta(days=32)).replace(day=1)
    raise UsageError(f"a quota period is day, week or month, not {period!r}")


def stamp(moment: datetime) -> str:
    """As the store writes times (ISO, milliseconds, UTC), so that they compare as text."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True)
class QuotaState:
    """One quota of a tenant, with its usage in the current period."""

    kind: str
    limit: float
    period: str
    used: float
    starts_at: str
    resets_at: str

    @property
    def remaining(self) -> float:
        return max(self.limit - self.used, 0.0)

    @property
    def exhausted(self) -> bool:
        return self.used >= self.limit

    def describe(self, used: float | None = None) -> str:
        """``runs 5/5 this day``, ``cost_usd $1.2000/$1.0000 this month``."""
        value = self.used if used is None else used
        if self.kind == "cost_usd":
            return f"cost_usd ${value:.4f}/${self.limit:.4f} this {self.period}"
        return f"{self.kind} {int(value)}/{int(self.limit)} this {self.period}"

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "limit": self.limit, "period": self.period, "used": self.used,
                "remaining": self.remaining, "exhausted": self.exhausted, "starts_at": self.starts_at,
                "resets_at": self.resets_at}


def _used(kind: str, usage: Any) -> float:
    return {"runs": usage.runs, "tokens": usage.tokens, "cost_usd": round(usage.cost_usd, 9)}[kind]


def states(store: Any, tenant_id: str, now: datetime | None = None) -> list[QuotaState]:
    """The tenant's period quotas with this period's usage (one usage read per distinct period)."""
    now = now or datetime.now(UTC)
    quotas = [q for q in store.quotas(tenant_id) if q.kind in PERIOD_KINDS]
    usage: dict[str, Any] = {}
    found = []
    for quota in quotas:
        start, end = period_bounds(quota.period, now)
        if quota.period not in usage:
            usage[quota.period] = store.tenant_usage(tenant_id, stamp(start))
        found.append(QuotaState(quota.kind, quota.limit, quota.period, _used(quota.kind, usage[quota.period]),
                                stamp(start), stamp(end)))
    return found


def rate_limit(store: Any, tenant_id: str) -> int | None:
    """The tenant's model calls per minute, or None for no limit."""
    return next((int(q.limit) for q in store.quotas(tenant_id) if q.kind == RATE_KIND), None)


def refusal_message(tenant_id: str, exhausted: QuotaState, others: list[QuotaState], used: float | None = None,
                    then: str = "") -> str:
    """What a refusal says: the quota, its usage, when it resets, what the other quotas have left."""
    left = [f"{q.kind} {_amount(q.kind, q.remaining)} left this {q.period}" for q in others if q != exhausted]
    flag = {"runs": "--runs N", "tokens": "--tokens N", "cost_usd": "--cost-usd X"}[exhausted.kind]
    return (f"quota exhausted for tenant {tenant_id}: {exhausted.describe(used)}; resets at {exhausted.resets_at}"
            + (f" ({'; '.join(left)})" if left else "") + (f"; {then}" if then else "")
            + f". Raise it with `aigentflow tenants quota set {tenant_id} {flag} --period {exhausted.period}`.")


def _amount(kind: str, value: float) -> str:
    return f"${value:.4f}" if kind == "cost_usd" else str(int(value))


@dataclass(frozen=True)
class Allowance:
    """What a tenant may still spend, as one step carries it to its model calls (counted down there)."""

    tenant_id: str
    states: tuple[QuotaState, ...] = ()
    tokens_left: float = math.inf
    cost_left: float = math.inf
    calls_per_minute: int | None = None
    """The Model Gateway's limit for this tenant (sent with each call), or None."""

    def refusal(self, tokens_used: int = 0, cost_used: float = 0.0) -> str | None:
        """Why no further model call may be made after using ``tokens_used`` and ``cost_used``, or None."""
        if tokens_used < self.tokens_left and cost_used < self.cost_left:
            return None
        return self._explain(tokens_used, cost_used)

    def exhausted_quota(self, tokens_used: int = 0, cost_used: float = 0.0) -> QuotaState | None:
        spent = {"tokens": tokens_used, "cost_usd": cost_used, "runs": 0}
        return next((q for q in self.states if q.kind != "runs" and q.used + spent[q.kind] >= q.limit), None)

    def _explain(self, tokens_used: int, cost_used: float) -> str | None:
        quota = self.exhausted_quota(tokens_used, cost_used)
        if quota is None:
            return None
        used = quota.used + (tokens_used if quota.kind == "tokens" else cost_used)
        return refusal_message(self.tenant_id, quota, list(self.states), used,
                               "the run is paused: `aigentflow resume <run>` once it resets or is raised")

    def after(self, tokens: int, cost: float) -> Allowance:
        """What is left once ``tokens`` and ``cost`` more are spent (a workflow's next agent call)."""
        spent = {"tokens": tokens, "cost_usd": cost, "runs": 0}
        return replace(self, states=tuple(replace(q, used=q.used + spent[q.kind]) for q in self.states),
                       tokens_left=self.tokens_left - tokens, cost_left=self.cost_left - cost)


def allowance(store: Any, tenant_id: str, now: datetime | None = None) -> Allowance:
    """The tenant's allowance now: its token and cost quotas' remainders (the smallest of each kind)."""
    found = states(store, tenant_id, now)
    left = {kind: min((q.limit - q.used for q in found if q.kind == kind), default=math.inf)
            for kind in ("tokens", "cost_usd")}
    return Allowance(tenant_id, tuple(found), left["tokens"], left["cost_usd"], rate_limit(store, tenant_id))


def record_refusal(store: Any, project_root: Path | None, tenant_id: str, quota: QuotaState, where: str,
                   run_id: str | None = None) -> None:
    """Audit the refusal under the tenant and record its incident (quota-exhausted rule) now."""
    store.append_audit(REFUSED, run_id, {"quota": quota.kind, "limit": quota.limit, "used": quota.used,
                                         "period": quota.period, "resets_at": quota.resets_at, "where": where},
                       tenant_id=tenant_id)
    if project_root is not None:
        from aigentflow.incidents.detect import detect

        detect(project_root, alert=False, kinds=("quota_exhausted",))


def admit(store: Any, project_root: Path | None, wanted: str, *, new_run: bool, run_id: str | None = None) -> str:
    """The tenant a new run goes under (``routed_tenant``; a resumed one keeps its own), once it may start
    or go on: ``UsageError`` for an unknown or suspended tenant, ``QuotaExhausted`` (the refusal recorded) for
    an exhausted quota."""
    tenant_id = routed_tenant(store, wanted) if new_run else wanted  # a run resumed stays where it was recorded
    tenant = require(store, tenant_id)
    if tenant.status != "active":
        raise UsageError(f"tenant {tenant_id!r} is {tenant.status}: its runs are refused; "
                         f"`aigentflow tenants activate {tenant_id}` lifts it")
    found = states(store, tenant_id)
    exhausted = next((q for q in found if q.exhausted and (new_run or q.kind != "runs")), None)
    if exhausted is not None:
        record_refusal(store, project_root, tenant_id, exhausted, "run" if new_run else "resume", run_id)
        then = "nothing was recorded" if new_run else f"run {run_id} stays paused"
        raise QuotaExhausted(refusal_message(tenant_id, exhausted, found, then=then))
    return tenant_id


def step_allowance(store: Any, project_root: Path | None, tenant_id: str, run_id: str, *,
                   before_step: bool) -> tuple[Allowance | None, str | None]:
    """(the allowance a step carries, None without quotas; why it is refused, None if it is not). A refusal is
    recorded: before a step, or after one whose model calls the quota stopped (``before_step`` False)."""
    quota = allowance(store, tenant_id)
    exhausted = quota.exhausted_quota()
    if exhausted is not None:
        record_refusal(store, project_root, tenant_id, exhausted, "step" if before_step else "model_call", run_id)
    refused = quota.refusal() if exhausted is not None else None
    return (quota if quota.states or quota.calls_per_minute else None), refused
