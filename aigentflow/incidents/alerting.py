"""Alert routing: which routes hear of which incidents, once each (again only when the severity rises),
not while the rule is silenced, with bounded retries; every attempt lands on the incident's timeline.

A route that cannot be reached costs at most ``1 + retries`` attempts per detection and ``give_up_after``
detections per incident; it never raises: detection (and the run whose end started it) goes on."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from aigentflow.incidents.config import IncidentSettings, Route, RouteError
from aigentflow.incidents.deliver import DeliveryFailed, send
from aigentflow.incidents.records import Incident
from aigentflow.incidents.store import IncidentStore
from aigentflow.store.rows import now_iso

MAX_BACKOFF_S = 30.0


@dataclass(frozen=True)
class Delivery:
    incident: int
    route: str
    result: str
    """``delivered``, ``failed``, ``silenced``, ``skipped`` (already alerted or given up)."""
    attempts: int
    detail: str


def hint(incident: Incident) -> str:
    return f"aigentflow incidents runbook INC-{incident.id}"


def dispatch(store: IncidentStore, settings: IncidentSettings, incidents: list[Incident],
             sleep: Callable[[float], None] = time.sleep) -> list[Delivery]:
    """Alert every route that wants each of ``incidents`` (open ones only: an acknowledged incident has a
    human on it)."""
    results = []
    at = now_iso()
    for incident in incidents:
        if incident.status != "open":
            continue
        routes = [route for route in settings.routes if route.wants(incident.severity, incident.rule)]
        if not routes:
            continue
        until = store.silenced_until(incident.rule, at)
        if until:
            store.note(incident.id, "silenced", f"{incident.severity} not alerted: {incident.rule} silenced until "
                                                f"{until}", result="silenced")
            results += [Delivery(incident.id, r.name, "silenced", 0, until) for r in routes]
            continue
        for route in routes:
            results.append(_deliver(store, settings, route, incident, sleep))
    return results


def _deliver(store: IncidentStore, settings: IncidentSettings, route: Route, incident: Incident,
             sleep: Callable[[float], None]) -> Delivery:
    if store.failed_deliveries(incident.id, route.name) >= settings.give_up_after:
        return Delivery(incident.id, route.name, "skipped", 0, "given up after repeated failures")
    if not store.claim_alert(incident.id, route.name, incident.severity):
        return Delivery(incident.id, route.name, "skipped", 0, "already alerted at this severity")
    store.redactor = _with_secrets(store, route)
    attempts, wait, last = 0, route.backoff_s, ""
    for attempt in range(1, route.retries + 2):
        attempts = attempt
        try:
            said = send(route, incident, hint(incident))
        except (DeliveryFailed, RouteError) as exc:
            last = str(exc)
            store.note(incident.id, "alerted", f"{incident.severity} attempt {attempt} failed: {last}",
                       route=route.name, result="attempt-failed")
            if isinstance(exc, RouteError) or attempt > route.retries:
                break
            sleep(min(wait, MAX_BACKOFF_S))
            wait *= 2
            continue
        store.note(incident.id, "alerted", f"{incident.severity} delivered on attempt {attempt}: {said}",
                   route=route.name, result="delivered")
        return Delivery(incident.id, route.name, "delivered", attempt, said)
    store.note(incident.id, "alerted", f"{incident.severity} failed after {attempts} attempt(s): {last}",
               route=route.name, result="failed")
    return Delivery(incident.id, route.name, "failed", attempts, last)


def _with_secrets(store: IncidentStore, route: Route):  # type: ignore[no-untyped-def]
    """The store's redactor, knowing the route's secret values too (a server may echo them back)."""
    from aigentflow.redact import Redactor

    secrets = route.secrets()
    if not secrets:
        return store.redactor
    return Redactor([*store.redactor.values, *secrets], store.redactor.extra_patterns)
