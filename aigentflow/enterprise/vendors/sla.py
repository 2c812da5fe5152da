"""SLA monitoring of model providers from the traces: the ``chat <model>`` spans of every run.

Each model-call span is one call to the provider litellm routes its model to (read from the
shipped provider table, never by importing litellm); a call whose span has status ``error`` failed.
Per vendor: calls, errors, availability (percent of calls that succeeded), p50/p95 latency, held
to the vendor's stated SLA (``DEFAULT_SLA`` when it states none): green when met, red when not.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from aigentflow.enterprise.vendors.register import DEFAULT_SLA, Register
from aigentflow.exceptions import UsageError
from aigentflow.tracing.spans import REQUEST_MODEL

_SINCE = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def since_ns(text: str | None, now: float | None = None) -> int | None:
    """``--since``: a duration back from now (``90m``, ``24h``, ``7d``) or a date/time (ISO 8601, UTC)."""
    if not text:
        return None
    now = time.time() if now is None else now
    if match := _SINCE.match(text.strip().lower()):
        return int((now - float(match.group(1)) * _UNITS[match.group(2)]) * 1e9)
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        raise UsageError(f"--since {text!r} is neither a duration (30m, 24h, 7d) nor a date (2026-05-01).") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp() * 1e9)


def provider_of_model(model: str) -> str:
    """The provider litellm routes ``model`` to, from the shipped table; else its ``prefix/``."""
    from aigentflow.models import providers

    if model.startswith("replay/"):
        return "replay"
    try:
        found = providers.resolve(model)
    except providers.Undecided:
        found = None
    return found or (model.split("/", 1)[0] if "/" in model else "unknown")


def is_model_call(span: Mapping[str, Any]) -> bool:
    return span.get("kind") == "model" or str(span.get("name", "")).startswith("chat ")


def percentile(values: list[float], share: float) -> float:
    """The ``share`` quantile by linear interpolation between the closest ranks."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    position = (len(ordered) - 1) * share
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass
class VendorSla:
    vendor: str
    name: str
    registered: bool
    sla: float
    p95_latency_ms: float | None
    calls: int = 0
    errors: int = 0
    providers: list[str] = field(default_factory=list)
    models: list[str] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list, repr=False)

    @property
    def availability(self) -> float:
        return 100.0 * (self.calls - self.errors) / self.calls if self.calls else 0.0

    @property
    def state(self) -> str:
        if not self.calls:
            return "no data"
        slow = self.p95_latency_ms is not None and percentile(self.latencies_ms, 0.95) > self.p95_latency_ms
        return "red" if self.availability < self.sla or slow else "green"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        del data["latencies_ms"]
        data.update(
            availability=round(self.availability, 4), state=self.state,
            error_rate=round(self.errors / self.calls, 6) if self.calls else 0.0,
            p50_ms=round(percentile(self.latencies_ms, 0.5), 3), p95_ms=round(percentile(self.latencies_ms, 0.95), 3),
        )
        return data


def sla_report(spans: Iterable[Mapping[str, Any]], register: Register, since: int | None = None) -> list[VendorSla]:
    """One row per vendor that model calls went to (and per registered vendor, ``no data`` if none)."""
    rows: dict[str, VendorSla] = {
        v.id: VendorSla(v.id, v.name, True, v.sla, v.p95_latency_ms) for v in register.vendors
    }
    for span in spans:
        if not is_model_call(span) or (since is not None and span["start_ns"] < since):
            continue
        attributes = span.get("attributes") or {}
        model = str(attributes.get(REQUEST_MODEL) or str(span["name"]).removeprefix("chat "))
        provider = str(attributes.get("gen_ai.provider.name") or attributes.get("gen_ai.system") or "") \
            or provider_of_model(model)
        vendor = register.for_provider(provider)
        key = vendor.id if vendor else provider
        row = rows.setdefault(key, VendorSla(key, key, False, DEFAULT_SLA, None))
        row.calls += 1
        row.errors += span.get("status") == "error"
        row.latencies_ms.append(max(0, span["end_ns"] - span["start_ns"]) / 1e6)
        if provider not in row.providers:
            row.providers.append(provider)
        if model not in row.models:
            row.models.append(model)
    return sorted(rows.values(), key=lambda r: (not r.calls, r.vendor))
