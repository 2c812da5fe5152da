"""The vendor register: the model providers and services a project's data goes to, and their review.

Kept as JSON in the project's ``.aigentflow/vendors.json``. Until something is recorded, the
register is seeded with the known vendors (OpenAI, Anthropic, a local OpenAI-compatible server)
and the provider of the project's configured model; each starts ``pending``, with no DPA, until
someone assesses it (``assess`` records a dated assessment and moves the status).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from aigentflow.exceptions import UsageError

FILENAME = "vendors.json"
STATUSES = ("approved", "pending", "rejected")
DEFAULT_SLA = 99.9
"""Availability (percent of successful calls) a vendor is held to when it states none: the rollout plan's."""
_ID = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


@dataclass
class Assessment:
    date: str
    status: str
    by: str
    notes: str = ""


@dataclass
class Vendor:
    id: str
    name: str
    kind: str = "model-provider"
    providers: list[str] = field(default_factory=list)
    """The litellm providers (``openai``, ``anthropic``, ``ollama``...) whose calls are this vendor's."""
    data_processed: list[str] = field(default_factory=list)
    region: str = "unknown"
    dpa: str = "no"
    """Whether a data processing agreement is in place: ``yes``, ``no`` or the date it was signed."""
    status: str = "pending"
    sla: float = DEFAULT_SLA
    """The availability the vendor states, percent of successful calls."""
    p95_latency_ms: float | None = None
    """The 95th-percentile latency the vendor states, if any."""
    source: str = "added"
    """Why it is in the register: ``known`` (seeded), ``config`` (the project's model), ``added``."""
    assessments: list[Assessment] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Vendor:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["assessments"] = [Assessment(**a) for a in data.get("assessments") or []]
        return cls(**known)


PROMPTS = ["prompts (feature requests, source code excerpts, test output)", "model replies"]
KNOWN = [
    Vendor("openai", "OpenAI", providers=["openai", "text-completion-openai", "azure"], data_processed=PROMPTS,
           region="US", source="known"),
    Vendor("anthropic", "Anthropic", providers=["anthropic"], data_processed=PROMPTS, region="US",
           source="known"),
    Vendor("local", "Local OpenAI-compatible server", kind="self-hosted",
           providers=["hosted_vllm", "vllm", "ollama", "ollama_chat", "lm_studio", "llamafile", "openai_like"],
           data_processed=PROMPTS, region="on-premises", source="known"),
]


def check_status(status: str) -> str:
    if status not in STATUSES:
        raise UsageError(f"unknown status {status!r}: use one of {', '.join(STATUSES)}.")
    return status


def check_dpa(dpa: str) -> str:
    value = dpa.strip().lower()
    if value in ("yes", "no"):
        return value
    try:
        return dt.date.fromisoformat(value).isoformat()
    except ValueError:
        raise UsageError(f"DPA {dpa!r} is not yes, no or a date (YYYY-MM-DD) it was signed.") from None


def check_sla(sla: float) -> float:
    if not 0 < sla <= 100:
        raise UsageError(f"SLA {sla} is not a percentage of successful calls (0 < SLA <= 100), e.g. 99.9.")
    return sla


def check_latency(milliseconds: float) -> float:
    if not milliseconds > 0:
        raise UsageError(f"p95 latency {milliseconds} ms is not positive.")
    return milliseconds


def check_date(date: str | None) -> str:
    if date is None:
        return dt.datetime.now(dt.UTC).date().isoformat()
    try:
        return dt.date.fromisoformat(date).isoformat()
    except ValueError:
        raise UsageError(f"date {date!r} is not YYYY-MM-DD.") from None


class Register:
    """The vendors of one project, read from and written to ``<state dir>/vendors.json``."""

    def __init__(self, path: Path, vendors: list[Vendor], stored: bool) -> None:
        self.path = path
        self.vendors = vendors
        self.stored = stored

    @classmethod
    def load(cls, state_dir: Path, configured_provider: str | None = None) -> Register:
        path = Path(state_dir) / FILENAME
        if path.is_file():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
                vendors = [Vendor.from_dict(v) for v in data["vendors"]]
            except (OSError, UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
                raise UsageError(f"{path} is not a vendor register ({exc}); fix it or move it aside.") from None
            return cls(path, vendors, stored=True)
        vendors = [Vendor.from_dict(v.to_dict()) for v in KNOWN]
        if configured_provider and configured_provider != "replay" and not any(
                configured_provider in v.providers for v in vendors):
            vendors.append(Vendor(configured_provider, configured_provider, providers=[configured_provider],
                                  data_processed=list(PROMPTS), source="config"))
        return cls(path, vendors, stored=False)

    def get(self, vendor_id: str) -> Vendor:
        for vendor in self.vendors:
            if vendor.id == vendor_id:
                return vendor
        raise UsageError(f"unknown vendor {vendor_id!r}; the register has {', '.join(v.id for v in self.vendors)}. "
                         "Add it with `aigentflow vendors add`.")

    def for_provider(self, provider: str) -> Vendor | None:
        return next((v for v in self.vendors if provider in v.providers or provider == v.id), None)

    def add(self, vendor: Vendor) -> Vendor:
        if not _ID.match(vendor.id):
            raise UsageError(f"vendor id {vendor.id!r} must be lower case letters, digits, '.', '_' or '-'.")
        if any(v.id == vendor.id for v in self.vendors):
            raise UsageError(f"vendor {vendor.id!r} is already in the register; `aigentflow vendors assess` it.")
        check_status(vendor.status)
        vendor.dpa = check_dpa(vendor.dpa)
        check_sla(vendor.sla)
        if vendor.p95_latency_ms is not None:
            check_latency(vendor.p95_latency_ms)
        self.vendors.append(vendor)
        return vendor

    def assess(self, vendor_id: str, status: str, *, by: str, notes: str = "", date: str | None = None,
               dpa: str | None = None, sla: float | None = None, p95_latency_ms: float | None = None) -> Vendor:
        vendor = self.get(vendor_id)
        check_status(status)
        when = check_date(date)
        if dpa is not None:
            vendor.dpa = check_dpa(dpa)
        if sla is not None:
            vendor.sla = check_sla(sla)
        if p95_latency_ms is not None:
            vendor.p95_latency_ms = check_latency(p95_latency_ms)
        vendor.status = status
        vendor.assessments.append(Assessment(when, status, by, notes))
        return vendor

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".json.tmp")
        temporary.write_text(json.dumps({"version": 1, "vendors": [v.to_dict() for v in self.vendors]}, indent=2)
                             + "\n", encoding="utf-8")
        os.replace(temporary, self.path)
        self.stored = True
