"""The API's request and response bodies (pydantic): what ``/v1/openapi.json`` describes."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from aigentflow.api.submit import SETTABLE_KEYS, SETTABLE_PREFIXES, settable

KEY_PATTERN = re.compile(r"[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)+")


class RunSubmission(BaseModel):
    """``POST /v1/runs``: a feature request, to run for the caller's tenant in this server's project."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    request: str = Field(min_length=1, description="The feature request, in plain words.")
    model: str | None = Field(None, min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]*$",
                              description="litellm model name (default: the project's model.name).")
    settings: dict[str, str | int | float | bool] = Field(
        default_factory=dict, alias="set",
        description="Config overrides for this run, KEY: VALUE (only model tuning, flags.* and skills.* keys).")

    @field_validator("request")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("the request is blank; say what the feature should do")
        return value

    @field_validator("settings")
    @classmethod
    def _settable(cls, value: dict[str, Any]) -> dict[str, Any]:
        malformed = sorted(key for key in value if not KEY_PATTERN.fullmatch(key))
        if malformed:
            raise ValueError(f"{', '.join(map(repr, malformed))}: a key is dotted words, e.g. flags.agents.tester")
        if "run.tenant" in value:
            raise ValueError("run.tenant cannot be set: a run belongs to the tenant of the token that submits it")
        refused = sorted(key for key in value if not settable(key))
        if refused:
            raise ValueError(f"{', '.join(refused)} cannot be set through the API (allowed: "
                             f"{', '.join(sorted(SETTABLE_KEYS))} and keys under {', '.join(SETTABLE_PREFIXES)}); "
                             "the operator sets the others in the project's config")
        return value

    def overrides(self) -> dict[str, str]:
        """The ``--set`` values, as ``aigentflow run`` takes them."""
        return {key: (str(value).lower() if isinstance(value, bool) else str(value))
                for key, value in self.settings.items()}


class Submitted(BaseModel):
    id: str = Field(description="The run's id.")
    state: str = Field(description="Its state when it was recorded (CREATED, or later).")
    url: str = Field(description="Where to read it.")
    events: str = Field(description="Where to follow it.")


class Usage(BaseModel):
    model_calls: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0


class RunSummary(BaseModel):
    id: str
    state: str
    request: str
    model: str
    created_at: str
    updated_at: str
    finished_at: str | None
    error: str | None
    model_calls: int


class RunList(BaseModel):
    runs: list[RunSummary]
    count: int = Field(description="How many runs the tenant has (the list holds at most ``limit``).")


class Step(BaseModel):
    step: str
    attempt: int
    role: str
    state: str
    status: str
    error: str | None
    started_at: str
    finished_at: str | None
    model_calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: float


class RunDetail(RunSummary):
    steps: list[Step]
    costs: Usage


class Event(BaseModel):
    seq: int = Field(description="The event's position in the run's log (1: its creation).")
    from_state: str | None
    to_state: str
    event: str
    reason: str | None
    at: str


class Events(BaseModel):
    run_id: str
    state: str
    terminal: bool = Field(description="The run is COMPLETED, FAILED or CANCELLED: no event will follow.")
    events: list[Event]
    next: int = Field(description="Pass as ``since`` to get the events after these.")


class AuditEntry(BaseModel):
    run_id: str | None
    event: str
    at: str
    data: dict[str, Any]


class AuditLog(BaseModel):
    entries: list[AuditEntry]


class Costs(BaseModel):
    by: str
    total: Usage
    rows: list[dict[str, Any]]
