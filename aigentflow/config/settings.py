"""The configuration's sections: one pydantic model each, every field with a one-line description.

``config.py`` merges the layers and validates them against these models.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from aigentflow.config import flags as feature_flags
from aigentflow.config.models import ConfiguredModel, ProviderSettings, RoutingSettings, check_catalog
from aigentflow.exceptions import ConfigError
from aigentflow.redact import looks_secret_name


def compiling(patterns: list[str], what: str) -> list[str]:
    """``patterns`` if every one is a valid regular expression, else ValueError naming the bad one."""
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            raise ValueError(f"{what} {pattern!r} does not compile: {exc}") from None
    return patterns


_VARIABLE_PATTERN = re.compile(r"[A-Za-z_*?][A-Za-z0-9_*?]*")


def passthrough_patterns(patterns: list[str]) -> list[str]:
    """``patterns`` if each names environment variables safe to pass to sandboxed commands, else
    ValueError: not a variable name or glob, matching everything, or looking like a secret's name."""
    for pattern in patterns:
        if not _VARIABLE_PATTERN.fullmatch(pattern):
            raise ValueError(f"{pattern!r} is not a variable name or a glob of one (letters, digits, _, * and ?)")
        if not pattern.strip("*?"):
            raise ValueError(f"{pattern!r} would pass every variable: name them, or a prefix such as MYAPP_*")
        if looks_secret_name(pattern):
            raise ValueError(f"{pattern!r} looks like the name of a secret (a key, token, password...): secrets "
                             "are never passed to sandboxed commands; remove it")
    return patterns


class ModelSettings(BaseModel):
    """How agents call the model (through litellm)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field("replay/demo", description="litellm model name, provider/model, or a name under models.")
    temperature: float = Field(0.0, ge=0, le=2, description="Sampling temperature.")
    max_validation_retries: int = Field(
        2, ge=0, le=10, description="Retries when a reply breaks the expected schema."
    )
    timeout_s: float = Field(120.0, gt=0, description="Seconds one model call may take.")
    max_calls_per_run: int = Field(200, ge=1, description="Budget of model calls per run.")
    replay_lenient: bool = Field(
        False, description="Replay: answer by agent and step even for prompts the cassette was not recorded for "
        "(prompt development only; every output of such a run says so)."
    )
    max_reply_bytes: int = Field(1_000_000, gt=0, description="Largest model reply accepted.")
    record: str = Field("", description='Cassette path to record model calls into ("" = off).')
    max_transient_retries: int = Field(
        3, ge=0, le=10, description="Retries of a call that failed transiently (rate limit, 5xx, timeout)."
    )
    retry_backoff_s: float = Field(
        1.0, ge=0, le=60, description="First wait before such a retry; doubles each time, with jitter."
    )


class RunSettings(BaseModel):
    """How a run is executed."""

    model_config = ConfigDict(extra="forbid")

    max_request_chars: int = Field(100_000, ge=1, description="Longest feature request accepted.")
    ray_address: str = Field("", description='Ray cluster address ("" = a local instance).')
    include_dashboard: bool = Field(False, description="Start the Ray dashboard with a local Ray.")
    step_timeout_s: float = Field(900.0, gt=0, description="Seconds one agent step may take; then it fails.")
    agent_start_timeout_s: float = Field(
        120.0, gt=0, description="Seconds the run's agents may take to start before the run stops."
    )
    agent_resource: str = Field(
        "", description='A custom Ray resource the agent actors need, to keep them on chosen nodes ("" = any).'
    )
    tenant: str = Field("default", description="Tenant the runs are recorded under.")


class TraceSettings(BaseModel):
    """How spans are written to the trace store."""

    model_config = ConfigDict(extra="forbid")

    flush_every_spans: int = Field(
        1024, ge=1, description="Spans buffered before a flush (a run also flushes every second and at each end).")
    redact_patterns: list[str] = Field(
        default_factory=list, description="Extra regexes whose matches are redacted from traces."
    )

    @field_validator("redact_patterns")
    @classmethod
    def _patterns_compile(cls, patterns: list[str]) -> list[str]:
        return compiling(patterns, "redact pattern")


class FlagSettings(BaseModel):
    """Feature flags: a rollout preset plus per-flag overrides."""

    model_config = ConfigDict(extra="forbid")

    preset: str = Field("mvp", description="Rollout preset the flags start from.")
    overrides: dict[str, bool | int] = Field(
        default_factory=dict, description="Per-flag values on top of the preset."
    )

    @model_validator(mode="after")
    def _flags_resolve(self) -> FlagSettings:
        try:
            feature_flags.resolve_flags(self.preset, self.overrides)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return self


class GitSettings(BaseModel):
    """Branches, worktrees and merges."""

    model_config = ConfigDict(extra="forbid")

    integration_branch: str = Field(
        "", description='Branch finished runs merge into ("" = the branch checked out at `aigentflow init`).'
    )
    merge_style: Literal["merge", "ff", "ff-only"] = Field(
        "merge", description="feature -> integration: merge (always a merge commit), ff (when possible), ff-only."
    )
    tag_prefix: str = Field("v", description="Prefix of release tags (v1.2.3).")


class BuildSettings(BaseModel):
    """How tasks are built and tested: commands, sandbox limits, parallelism."""

    model_config = ConfigDict(extra="forbid")

    test_command: str = Field("", description='Command running the project\'s tests ("" = detected at init).')
    ci_command: str = Field("", description='The project\'s CI command, run as a merge gate ("" = none).')
    timeout_s: float = Field(600.0, gt=0, description="Seconds one sandboxed command may take.")
    memory_mb: int = Field(2048, ge=16, description="Memory limit of one sandboxed command, MiB.")
    max_processes: int = Field(256, ge=4, description="Processes one sandboxed command may run at once.")
    max_output_kb: int = Field(1024, ge=1, description="Output kept from one sandboxed command, KiB (then killed).")
    network: bool = Field(False, description="Let sandboxed commands use the network.")
    sandbox_allow_unconfined: bool = Field(
        False, description="Run sandboxed commands even where bubblewrap cannot confine their filesystem "
        "(they could then read your secrets and write anywhere you can).",
    )
    env_passthrough: list[str] = Field(
        default_factory=list,
        description="Your environment variables sandboxed commands also get (names or globs: PYTHONPATH, MYAPP_*).",
    )
    coverage_threshold: float = Field(
        80.0, ge=0, le=100, description="Least coverage (%) of a task's changed lines (features.coverageTracking)."
    )
    coverage_command: str = Field(
        "", description='Command writing a coverage.py JSON report to {report} ("" = coverage.py around pytest).'
    )
    task_cpus: float = Field(1.0, ge=0, description="CPUs each build task reserves on the cluster.")
    task_resource: str = Field(
        "", description='Custom Ray resource build tasks need ("" = none), e.g. to keep them on builder nodes.'
    )


    @field_validator("env_passthrough")
    @classmethod
    def _passthrough_names(cls, patterns: list[str]) -> list[str]:
        return passthrough_patterns(patterns)

    def with_detected_test_command(self, facts: Mapping[str, Any]) -> BuildSettings:
        """These settings, with the test command `aigentflow init` detected (``facts``, the project's) when
        none is configured."""
        if self.test_command:
            return self
        return self.model_copy(update={"test_command": facts.get("test_command") or ""})


class ComplianceSettings(BaseModel):
    """What the Compliance Agent blocks (agents.complianceAgent)."""

    model_config = ConfigDict(extra="forbid")

    denied_licenses: list[str] = Field(
        default_factory=lambda: ["AGPL-3.0", "GPL-3.0", "SSPL-1.0"],
        description="Dependency licenses that block a merge (SPDX ids, matched in the license text).",
    )
    forbidden_patterns: list[str] = Field(
        default_factory=list, description="Regular expressions that block a change adding a matching line."
    )
    block_unknown_licenses: bool = Field(False, description="A dependency whose license is unknown blocks too.")

    @field_validator("forbidden_patterns")
    @classmethod
    def _patterns_compile(cls, patterns: list[str]) -> list[str]:
        return compiling(patterns, "forbidden pattern")


_RESEARCH = ["*"]
"""Roles that read and decide may call every configured MCP tool by default."""
_WRITERS: list[str] = []
"""Roles that edit the worktree may call none by default: a tool with side effects would act outside
the edit guard and the sandbox. Allow tools for them explicitly (``tools.backend_developer``)."""


class ToolSettings(BaseModel):
    """Which MCP tools each agent role may call (``server/tool``, ``server/*`` or ``*``), and limits.

    A call outside a role's list is refused, and recorded. Servers are configured in ``mcpServers`` JSON
    (``.aigentflow/mcp.json``, and ``mcp.json`` in the user's config directory), each with its own
    ``timeout_s`` per call (default 30 s)."""

    model_config = ConfigDict(extra="forbid")

    analyst: list[str] = Field(default_factory=lambda: list(_RESEARCH), description="MCP tools the Analyst may call.")
    project_manager: list[str] = Field(default_factory=lambda: list(_RESEARCH),
                                       description="MCP tools the Project Manager may call.")
    architect: list[str] = Field(default_factory=lambda: list(_RESEARCH),
                                 description="MCP tools the Architect may call.")
    ui_designer: list[str] = Field(default_factory=lambda: list(_RESEARCH),
                                   description="MCP tools the UI Designer may call.")
    project_analyzer: list[str] = Field(default_factory=lambda: list(_RESEARCH),
                                        description="MCP tools the Project Analyzer may call.")
    reviewer: list[str] = Field(default_factory=lambda: list(_RESEARCH), description="MCP tools the Reviewer may call.")
    backend_developer: list[str] = Field(default_factory=lambda: list(_WRITERS),
                                         description="MCP tools the Backend Developer may call.")
    frontend_developer: list[str] = Field(default_factory=lambda: list(_WRITERS),
                                          description="MCP tools the Frontend Developer may call.")
    tester: list[str] = Field(default_factory=lambda: list(_WRITERS), description="MCP tools the Tester may call.")
    bug_fixer: list[str] = Field(default_factory=lambda: list(_WRITERS),
                                 description="MCP tools the Bug Fixer may call.")
    merge_resolver: list[str] = Field(default_factory=lambda: list(_WRITERS),
                                      description="MCP tools the Merge Conflict Resolver may call.")
    max_rounds: int = Field(4, ge=0, le=20, description="Rounds of tool calls one agent step may make.")
    max_calls_per_round: int = Field(4, ge=1, le=20, description="Tool calls the model may ask for at once.")
    max_result_chars: int = Field(8000, ge=100, description="Characters of a tool's result shown to the model.")

    @field_validator("*")
    @classmethod
    def _patterns(cls, value: object) -> object:
        if isinstance(value, list):
            for pattern in value:
                if pattern != "*" and not re.fullmatch(r"[A-Za-z0-9_-]+/(\*|[A-Za-z0-9_.:-]+)", pattern):
                    raise ValueError(f"{pattern!r} is not a tool pattern: use server/tool, server/* or *")
        return value

    def allowed(self, role: str) -> list[str]:
        return list(getattr(self, role, []) or []) if role in type(self).model_fields else []


class SkillSettings(BaseModel):
    """Skill packs (SKILL.md folders: built-in, the user's, the project's .aigentflow/skills/)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(True, description="Pick relevant skills for each agent call and put them in its prompt.")
    limit: int = Field(3, ge=0, le=10, description="Most skills picked for one agent call.")
    min_score: int = Field(2, ge=1, description="Terms a skill's name and description must share with the task.")


class HookConfig(BaseModel):
    """A command or Python function called on run events."""

    model_config = ConfigDict(extra="forbid")

    event: str = Field("*", description='Event name the hook runs on, or "*" for every event.')
    command: str | None = Field(None, description="Shell command; gets the event as JSON on stdin.")
    entry_point: str | None = Field(None, description='Python function as "module:function".')
    timeout_s: float = Field(10.0, gt=0, description="Seconds the hook may take.")

    @model_validator(mode="after")
    def _one_action(self) -> HookConfig:
        if (self.command is None) == (self.entry_point is None):
            raise ValueError("a hook needs exactly one of `command` or `entry_point`")
        if self.entry_point is not None:
            module, _, function = self.entry_point.partition(":")
            if not module or not function:
                raise ValueError(
                    f"entry_point {self.entry_point!r} must look like 'module:function'"
                )
        return self


class AgentChoice(BaseModel):
    """Which version of a role runs use (``agents.<role>.version``; ``aigentflow agents list`` shows them)."""

    model_config = ConfigDict(extra="forbid")

    version: str | None = Field(None, description="The version of the role a run uses; none: the built-in one.")


class GdprSettings(BaseModel):
    """Data protection (`aigentflow gdpr`): consent enforcement, retention, the Article 30 record."""

    model_config = ConfigDict(extra="forbid")

    require_consent: bool = Field(
        False, description="Refuse a run whose request names a data subject without consent for consent_purpose."
    )
    consent_purpose: str = Field("processing", description="The consent purpose a run's request needs.")
    retention_traces_days: int = Field(0, ge=0, description="Days trace segments are kept (0 = forever).")
    retention_outputs_days: int = Field(0, ge=0, description="Days run output directories are kept (0 = forever).")
    retention_worktrees_days: int = Field(
        0, ge=0, description="Days finished runs' worktrees and branches are kept (0 = forever)."
    )
    retention_after_runs: bool = Field(False, description="Apply the retention policy at the end of every run.")
    controller: str = Field("", description="The data controller named in the Article 30 record.")
    contact: str = Field("", description="The controller's (or DPO's) contact in the Article 30 record.")
    purposes: list[str] = Field(
        default_factory=lambda: ["software development: feature requests carried out by AI agents on this repository"],
        description="Purposes of processing listed in the Article 30 record.",
    )


class Settings(BaseModel):
    """The whole validated configuration."""

    model_config = ConfigDict(extra="forbid")

    model: ModelSettings = Field(default_factory=ModelSettings, description="Model calls.")
    run: RunSettings = Field(default_factory=RunSettings, description="Run execution.")
    trace: TraceSettings = Field(default_factory=TraceSettings, description="Tracing.")
    flags: FlagSettings = Field(default_factory=FlagSettings, description="Feature flags.")
    git: GitSettings = Field(default_factory=GitSettings, description="Branches and merges.")
    build: BuildSettings = Field(default_factory=BuildSettings, description="Building and testing tasks.")
    compliance: ComplianceSettings = Field(default_factory=ComplianceSettings, description="Compliance checks.")
    tools: ToolSettings = Field(default_factory=ToolSettings, description="MCP tools per agent role.")
    skills: SkillSettings = Field(default_factory=SkillSettings, description="Skill packs.")
    hooks: list[HookConfig] = Field(default_factory=list, description="Event hooks.")
    agents: dict[str, AgentChoice] = Field(default_factory=dict, description="The version of each role runs use.")
    gdpr: GdprSettings = Field(default_factory=GdprSettings, description="Data protection.")
    providers: dict[str, ProviderSettings] = Field(default_factory=dict, description="Named model providers.")
    models: dict[str, ConfiguredModel] = Field(default_factory=dict, description="Models by name, with providers.")
    routing: RoutingSettings = Field(default_factory=RoutingSettings, description="Model routing per role and task.")

    @model_validator(mode="after")
    def _catalog_refers(self) -> Settings:
        check_catalog(self.providers, self.models, self.routing)
        return self

    @classmethod
    def from_stored(cls, data: Mapping[str, Any]) -> Settings:
        """The settings a run recorded (``RunRecord.settings``), read leniently: what an older version did
        not record gets today's defaults, and what it recorded that this version no longer knows is
        ignored. (User input stays strict: ``config.load_config`` validates it, unknown keys refused.)"""
        known = _known(cls, data)
        try:
            return cls.model_validate(known)
        except ValidationError:
            # Checked when the run was recorded, by the version that recorded it: a value a later version
            # refuses (a tightened limit) still reads, as it was.
            return _constructed(cls, known)


def _model_of(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """The model class a field holds (and whether as a list of them), else None."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation, False
    args = getattr(annotation, "__args__", ())
    if getattr(annotation, "__origin__", None) is list and args and isinstance(args[0], type) \
            and issubclass(args[0], BaseModel):
        return args[0], True
    return None, False


def _known(model: type[BaseModel], data: Any) -> Any:
    """``data`` with only the keys ``model`` (and the models in it) has fields for."""
    if not isinstance(data, Mapping):
        return data
    kept: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        if name not in data:
            continue
        inner, many = _model_of(info.annotation)
        value = data[name]
        if inner is None:
            kept[name] = value
        elif many and isinstance(value, list):
            kept[name] = [_known(inner, item) for item in value]
        else:
            kept[name] = _known(inner, value)
    return kept


def _constructed(model: type[BaseModel], data: Any) -> Any:
    """``model`` built from ``data`` (already ``_known``) without validation, nested models too."""
    if not isinstance(data, Mapping):
        return data
    values: dict[str, Any] = {}
    for name, value in data.items():
        inner, many = _model_of(model.model_fields[name].annotation)
        if inner is None:
            values[name] = value
        elif many and isinstance(value, list):
            values[name] = [_constructed(inner, item) for item in value]
        else:
            values[name] = _constructed(inner, value)
    return model.model_construct(**values)
