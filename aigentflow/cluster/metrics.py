"""Run metrics, exported with ``ray.util.metrics`` to the Prometheus endpoint of Ray's metrics agent.

Best effort by design: every ``record_*`` function is cheap, never raises into its caller (a failure
is logged at debug level), and is a silent no-op in a process where Ray is not initialised. This
module never imports ray: it looks for an already imported and initialised ray, and creates the
ray.util.metrics objects once per process, on the first record made there.

Ray's Prometheus endpoint shows a metric registered as ``aigentflow_x`` as ``ray_aigentflow_x``, with
Ray's own labels added; see docs/metrics.md for the names, their meaning and queries.
"""

from __future__ import annotations

import logging
import math
import sys
import threading
from dataclasses import dataclass
from typing import Any

log = logging.getLogger(__name__)

SECONDS_BOUNDARIES = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 600.0)
"""Histogram buckets for durations: from a cached step (10 ms) to a slow model step (10 min)."""
FINISHED_STATES = ("COMPLETED", "FAILED", "CANCELLED")
AGENT_OUTCOMES = ("ok", "failed", "paused")
MODEL_OUTCOMES = ("ok", "transient_error", "error")
TOKEN_DIRECTIONS = ("input", "output")
MAX_TAG_CHARS = 128


@dataclass(frozen=True)
class MetricSpec:
    """One metric: the name it is registered under, its kind, its description and tag keys."""

    name: str
    kind: str
    """``counter`` or ``histogram``."""
    description: str
    tag_keys: tuple[str, ...] = ()

    @property
    def exported_name(self) -> str:
        """The name Ray's Prometheus endpoint shows (histograms add _bucket, _count and _sum)."""
        return f"ray_{self.name}"


# Counter names end in "_total" as Prometheus shows them; the exporter adds no second suffix (and
# Ray's older OpenCensus path, RAY_enable_open_telemetry=0, then adds no deprecated gauge twin).
SPECS: tuple[MetricSpec, ...] = (
    MetricSpec("aigentflow_run_transitions_total", "counter",
               "Run state transitions made, by the state left and the state entered.", ("from_state", "to_state")),
    MetricSpec("aigentflow_runs_finished_total", "counter",
               "Runs that reached a terminal state (COMPLETED, FAILED or CANCELLED).", ("state",)),
    MetricSpec("aigentflow_agent_calls_total", "counter",
               "Agent invocations by the engine, by role and outcome (ok, failed, paused).", ("role", "outcome")),
    MetricSpec("aigentflow_agent_call_seconds", "histogram",
               "Wall time of one agent invocation as the engine sees it, in seconds.", ("role", "outcome")),
    MetricSpec("aigentflow_model_calls_total", "counter",
               "Model calls (each try), by model and outcome (ok, transient_error, error).", ("model", "outcome")),
    MetricSpec("aigentflow_model_call_seconds", "histogram",
               "Wall time of one model call (one try), in seconds.", ("model", "outcome")),
    MetricSpec("aigentflow_model_tokens_total", "counter",
               "Tokens sent to (input) and received from (output) models.", ("model", "direction")),
    MetricSpec("aigentflow_model_cost_usd_total", "counter",
               "Model cost in US dollars, as priced by the model library.", ("model",)),
    MetricSpec("aigentflow_step_seconds", "histogram",
               "Wall time of one run step, from its start to its commit or failure, in seconds.", ("step",)),
    MetricSpec("aigentflow_dropped_spans_total", "counter",
               "Trace spans dropped because they could not be written."),
)
SPECS_BY_NAME = {spec.name: spec for spec in SPECS}

_lock = threading.Lock()
_instruments: dict[str, Any] | None = None
_unavailable = False
"""Creating the metrics failed once in this process: do not try (and log) on every record."""


def _ray_initialised() -> bool:
    ray = sys.modules.get("ray")
    if ray is None:
        return False
    try:
        return bool(ray.is_initialized())
    except Exception:  # noqa: BLE001 - a half-imported or torn-down ray
        return False


def _create_instruments() -> dict[str, Any]:
    from ray.util.metrics import Counter, Histogram

    created: dict[str, Any] = {}
    for spec in SPECS:
        if spec.kind == "counter":
            created[spec.name] = Counter(spec.name, description=spec.description, tag_keys=spec.tag_keys)
        else:
            created[spec.name] = Histogram(spec.name, description=spec.description,
                                           boundaries=list(SECONDS_BOUNDARIES), tag_keys=spec.tag_keys)
    return created


def _active_instruments() -> dict[str, Any] | None:
    """The metric objects of this process, created on first use; None where Ray is not running."""
    global _instruments, _unavailable  # noqa: PLW0603 - created once per process, on first use
    if _unavailable or not _ray_initialised():
        return None
    if _instruments is None:
        with _lock:
            if _instruments is None and not _unavailable:
                try:
                    _instruments = _create_instruments()
                except Exception as exc:  # noqa: BLE001 - metrics must never break the caller
                    _unavailable = True
                    log.debug("metrics disabled in this process: %s: %s", type(exc).__name__, exc)
    return _instruments


def is_active() -> bool:
    """Whether this process records metrics (Ray is initialised here and the metrics exist)."""
    try:
        return _active_instruments() is not None
    except Exception:  # noqa: BLE001 - best effort
        return False


def _tag(value: Any) -> str:
    text = "" if value is None else str(value)  # str(): plain text even for a StrEnum member
    return text[:MAX_TAG_CHARS] or "unknown"


def _record(name: str, value: Any, **tags: Any) -> None:
    """Add ``value`` to a counter (only when positive) or observe it in a histogram; never raises."""
    try:
        instruments = _active_instruments()
        if instruments is None:
            return
        number = float(value)
        if not math.isfinite(number):
            return
        labels = {key: _tag(tag) for key, tag in tags.items()}
        if SPECS_BY_NAME[name].kind == "counter":
            if number > 0:
                instruments[name].inc(number, labels)
        else:
            instruments[name].observe(max(number, 0.0), labels)
    except Exception as exc:  # noqa: BLE001 - metrics must never break the caller
        log.debug("metric %s not recorded: %s: %s", name, type(exc).__name__, exc)


def record_transition(from_state: str, to_state: str) -> None:
    """Count one run state transition."""
    _record("aigentflow_run_transitions_total", 1, from_state=from_state, to_state=to_state)


def record_run_finished(state: str) -> None:
    """Count one run reaching a terminal state (COMPLETED, FAILED or CANCELLED)."""
    _record("aigentflow_runs_finished_total", 1, state=state)


def record_agent_call(role: str, outcome: str, seconds: float) -> None:
    """Count one agent invocation (outcome ok, failed or paused) and observe how long it took."""
    _record("aigentflow_agent_calls_total", 1, role=role, outcome=outcome)
    _record("aigentflow_agent_call_seconds", seconds, role=role, outcome=outcome)


def record_model_call(model: str, outcome: str, input_tokens: int = 0, output_tokens: int = 0,
                      cost_usd: float = 0.0, seconds: float | None = None) -> None:
    """Count one model call (outcome ok, transient_error or error) with its tokens, cost and time."""
    _record("aigentflow_model_calls_total", 1, model=model, outcome=outcome)
    _record("aigentflow_model_tokens_total", input_tokens, model=model, direction="input")
    _record("aigentflow_model_tokens_total", output_tokens, model=model, direction="output")
    _record("aigentflow_model_cost_usd_total", cost_usd, model=model)
    if seconds is not None:
        _record("aigentflow_model_call_seconds", seconds, model=model, outcome=outcome)


def record_step(step: str, seconds: float) -> None:
    """Observe the wall time of one run step."""
    _record("aigentflow_step_seconds", seconds, step=step)


def record_dropped_spans(count: int) -> None:
    """Count trace spans that were dropped (zero records nothing)."""
    _record("aigentflow_dropped_spans_total", count)
