"""The Enterprise dashboard: tenant isolation score, DSAR completion time, compliance score, model cost tracking
accuracy and feature-flag evaluation latency, with the rollout plan's thresholds.

- Tenant isolation: ``aigentflow.tenants.isolation.measure(root)`` (``{"checked", "leaks", "score"}``), the
  probe of every place a tenant's data lives; no data while that module is not installed.
- DSAR completion time: the DSAR log (``dsar`` table, ``aigentflow gdpr export|erase``): the slowest request,
  a completed one's duration or an open one's age so far (an open request past 30 days fails the figure).
- Compliance score: ``aigentflow.compliance.status`` (as ``aigentflow compliance status``): passing controls
  over the decided ones.
- Model cost tracking accuracy: the cost recorded for each model's calls (``model_usage``) against the usage the
  provider reported (the tokens recorded with it) times the model's price (its configured price, else
  litellm's cost map, as ``aigentflow.models.catalog.prices`` reads it): 1 - |recorded - expected| / expected,
  over the priced models' calls (replayed calls cost nothing and are left out).
- Flag evaluation latency: each of the project's flags evaluated through the OpenFeature client (aigentflow's
  provider, the project's flags files), each evaluation timed alone, in this process when the dashboard is
  computed: the p99.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from evolution.dashboards.data import ProjectData, parse_time
from evolution.dashboards.figure import Figure, Threshold, measured, no_data, percent

PHASE = "Enterprise"
ISOLATION = Threshold("==", 1.0, "100%")
DSAR_DAYS = Threshold("<", 30.0, "< 30 days")
COMPLIANCE = Threshold(">", 95.0, "> 95%")
COST_ACCURACY = Threshold(">", 0.99, "> 99%")
FLAG_LATENCY = Threshold("<", 10.0, "< 10ms")
FLAG_ROUNDS = 200
"""Evaluations of each flag for the latency figure (about 10k in all: a few tens of milliseconds)."""


def tenant_isolation(data: ProjectData) -> Figure:
    """The isolation probe's score (1.0 = no tenant's data reachable from another)."""
    import importlib.util

    title = "Tenant isolation score"
    try:
        present = importlib.util.find_spec("aigentflow.tenants.isolation") is not None
    except ImportError:
        present = False
    if not present:
        return no_data("tenant_isolation_score", PHASE, title, ISOLATION, "tenant isolation probe not installed")
    from aigentflow.tenants import isolation

    try:
        result = isolation.measure(data.paths.root)
    except Exception as exc:  # noqa: BLE001 - the probe's failure is this figure's "no data", not the page's
        return no_data("tenant_isolation_score", PHASE, title, ISOLATION, f"the isolation probe failed: {exc}")
    checked, leaks, score = int(result.get("checked") or 0), int(result.get("leaks") or 0), result.get("score")
    if not checked or not isinstance(score, int | float):
        return no_data("tenant_isolation_score", PHASE, title, ISOLATION, "the isolation probe had nothing to check")
    value = score / 100 if score > 1 else float(score)
    return measured("tenant_isolation_score", PHASE, title, value, percent(value), ISOLATION,
                    f"{checked} isolation checks, {leaks} leak(s) found")


def days_text(seconds: float) -> str:
    """A DSAR's duration as people read it: "2.3 s", "14 min", "5.2 h", "12.5 days"."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    if seconds < 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _dsar_rows(data: ProjectData) -> list[dict[str, Any]] | None:
    """The DSAR log, read-only; None when the store has no such table (or cannot be read)."""
    try:
        connection = sqlite3.connect(f"{data.paths.database.resolve().as_uri()}?mode=ro", uri=True)
    except sqlite3.Error:
        return None
    connection.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in connection.execute("SELECT id, kind, status, requested_at, completed_at, duration_s "
                                                    "FROM dsar ORDER BY requested_at")]
    except sqlite3.Error:
        return None
    finally:
        connection.close()


def dsar_completion(data: ProjectData) -> Figure:
    """The slowest data subject request: a completed one's duration, or an open one's age so far."""
    title = "DSAR completion time"
    rows = _dsar_rows(data)
    if not rows:
        return no_data("dsar_completion_days", PHASE, title, DSAR_DAYS,
                       "no data subject request recorded yet (`aigentflow gdpr export|erase SUBJECT`)")
    slowest, which, open_count = 0.0, rows[0], 0
    for row in rows:
        if row["status"] == "done" and row["duration_s"] is not None:
            seconds = float(row["duration_s"])
        else:
            open_count += 1
            started = parse_time(row["requested_at"])
            seconds = (data.now - started).total_seconds() if started else 0.0
        if seconds >= slowest:
            slowest, which = seconds, row
    done = len(rows) - open_count
    return measured("dsar_completion_days", PHASE, title, slowest / 86400, days_text(slowest), DSAR_DAYS,
                    f"slowest of {len(rows)} request(s) ({done} completed, {open_count} open): {which['id']} "
                    f"({which['kind']}, {which['status']})")


def compliance_score(data: ProjectData) -> Figure:
    """Passing SOC 2 controls over the decided ones, as ``aigentflow compliance status`` computes it."""
    from aigentflow.compliance.records import connect
    from aigentflow.compliance.status import compute
    from aigentflow.exceptions import AigentflowError

    title = "Compliance score"
    try:
        with connect(data.paths) as conn:
            status = compute(data.paths, conn)
    except (AigentflowError, OSError, sqlite3.Error) as exc:
        return no_data("compliance_score", PHASE, title, COMPLIANCE, f"the compliance status could not be read: {exc}")
    counts = status.to_dict()["counts"]
    if status.score is None:
        return no_data("compliance_score", PHASE, title, COMPLIANCE,
                       f"no control decided yet ({counts['no evidence']} without evidence; "
                       "`aigentflow compliance collect`)")
    return measured("compliance_score", PHASE, title, status.score, f"{status.score:g}%", COMPLIANCE,
                    f"{counts['pass']} of {counts['pass'] + counts['fail']} decided controls pass "
                    f"({counts['no evidence']} without evidence)")


def _price(settings: Any, model: str) -> tuple[float, float, str] | None:
    """(per input token, per output token, where from) of a recorded model name; None when it has no price."""
    from aigentflow.models import catalog
    from aigentflow.models.spec import Deployment

    if model.startswith("replay/"):
        return None
    if catalog.is_configured(settings, model):
        dep = catalog.deployment(settings, model)
    elif "/" in model:
        dep = Deployment(name=model, provider=model.split("/", 1)[0], litellm_model=model)
    else:
        return None
    prompt, completion, source = catalog.prices(dep)
    return None if source == "unpriced" else (prompt, completion, source)


def cost_accuracy(data: ProjectData) -> Figure:
    """Recorded cost against reported usage x price, over every priced model's recorded calls."""
    from aigentflow.config.loader import load_config
    from aigentflow.exceptions import AigentflowError

    title = "Model cost tracking accuracy"
    try:
        settings = load_config(data.paths.root).settings
        store = data.paths.database
        connection = sqlite3.connect(f"{store.resolve().as_uri()}?mode=ro", uri=True)
        try:
            rows = connection.execute("SELECT model, SUM(calls), SUM(input_tokens), SUM(output_tokens), "
                                      "SUM(cost_usd) FROM model_usage GROUP BY model ORDER BY model").fetchall()
        finally:
            connection.close()
    except (AigentflowError, sqlite3.Error) as exc:
        return no_data("cost_tracking_accuracy", PHASE, title, COST_ACCURACY,
                       f"the model usage could not be read: {exc}")
    recorded = expected = error = 0.0
    calls, models = 0, []
    for model, n, tokens_in, tokens_out, cost in rows:
        price = _price(settings, model)
        if price is None:
            continue
        want = (tokens_in or 0) * price[0] + (tokens_out or 0) * price[1]
        recorded, expected, error = recorded + (cost or 0.0), expected + want, error + abs((cost or 0.0) - want)
        calls += n or 0
        models.append(model)
    if not models or expected <= 0:
        return no_data("cost_tracking_accuracy", PHASE, title, COST_ACCURACY,
                       "no call of a priced model recorded yet (replayed calls cost nothing)")
    accuracy = max(0.0, 1 - error / expected)
    return measured("cost_tracking_accuracy", PHASE, title, accuracy, percent(accuracy), COST_ACCURACY,
                    f"${recorded:.6f} recorded vs ${expected:.6f} from the reported tokens x price, {calls} call(s) "
                    f"of {', '.join(models)}")


def flag_latency(data: ProjectData) -> Figure:
    """p99 of the project's flags evaluated through the OpenFeature client, each evaluation timed alone."""
    from openfeature.evaluation_context import EvaluationContext

    from aigentflow.exceptions import AigentflowError
    from aigentflow.flags.provider import AigentflowProvider, client

    title = "Feature flag evaluation latency"
    try:
        provider = AigentflowProvider.for_project(data.paths.root)
    except AigentflowError as exc:
        return no_data("flag_eval_latency_p99", PHASE, title, FLAG_LATENCY, f"the project's flags do not load: {exc}")
    flags = client(provider, domain="aigentflow-dashboard")
    getters = {"boolean": flags.get_boolean_value, "integer": flags.get_integer_value,
               "float": flags.get_float_value, "string": flags.get_string_value}
    definitions = list(provider.evaluator.definitions.values())
    clock = time.perf_counter_ns
    samples = []
    for number in range(FLAG_ROUNDS):
        context = EvaluationContext(f"user-{number}", {"tenant": "default", "project": data.paths.root.name,
                                                      "user": f"user-{number}"})
        for definition in definitions:
            getter = getters[definition.type]
            started = clock()
            getter(definition.key, definition.default, context)
            samples.append(clock() - started)
    samples.sort()
    p99_ms = samples[min(len(samples) - 1, int(len(samples) * 0.99))] / 1e6
    display = f"{p99_ms * 1000:.0f} µs" if p99_ms < 1 else f"{p99_ms:.2f} ms"
    return measured("flag_eval_latency_p99", PHASE, title, round(p99_ms, 4), display, FLAG_LATENCY,
                    f"p99 of {len(samples)} evaluations ({len(definitions)} flags x {FLAG_ROUNDS} subjects) through "
                    "the OpenFeature client, timed now in this process")


def figures(data: ProjectData) -> list[Figure]:
    return [tenant_isolation(data), dsar_completion(data), compliance_score(data), cost_accuracy(data),
            flag_latency(data)]
