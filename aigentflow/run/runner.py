"""A run before and around Ray, through the store only: check it, record it, pause it, follow it.

``plan_run`` checks everything a run needs and ``record_run`` records it (CREATED); ``force_pause``
moves a run whose owner is gone to PAUSED (``progress.ProgressWatcher`` reads the store to report progress).
Nothing here imports Ray or ``actors/``: ``aigentflow.launch`` connects, hands the run to its node's
run host and follows it with these.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aigentflow.exceptions import UsageError
from aigentflow.project.paths import ProjectPaths
from aigentflow.run.statemachine import (
    STATES,
    Event,
    Snapshot,
    State,
    enabled_states,
    fire,
    is_terminal,
)
from aigentflow.store.records import RunRecord
from aigentflow.store.rows import new_run_id
from aigentflow.store.sqlite import SQLiteRunStore, StaleRun

if TYPE_CHECKING:
    from aigentflow.store.protocol import RunStore

EXIT_OK, EXIT_FAILED, EXIT_PAUSED, EXIT_INTERRUPTED = 0, 1, 3, 130


@dataclass
class Outcome:
    run_id: str
    state: str
    error: str | None
    exit_code: int
    lenient: bool = False
    """The run replays a cassette marked lenient (every output says so)."""


def check_request(request: str, max_chars: int) -> str:
    text = request.strip()
    if not text:
        raise UsageError("the feature request is empty; say what you want built, e.g. "
                         "`aigentflow run \"Add due dates to tasks\"`.")
    if len(request) > max_chars:
        raise UsageError(f"the feature request is {len(request)} characters, over the limit of {max_chars} "
                         "(run.max_request_chars); summarise it, or raise the limit.")
    return text


def preflight_agents(flags: Mapping[str, Any], roles: Any) -> None:
    """Refuse a flag set that enables a state no active role leads (``roles``: the run's ``ActiveRoles``)."""
    for state in sorted(enabled_states(flags)):
        step = STATES[state].step
        if roles.lead(step) is None:
            raise UsageError(
                f"{state} is enabled by {' / '.join(STATES[state].agent_flags)}, but no active role leads its step "
                f"{step!r}; turn it off (`aigentflow config set flags.{STATES[state].agent_flags[0]} false`), "
                "use the mvp preset, or pick a role version that leads it (`aigentflow agents list`)."
            )


def preflight_role_models(paths: ProjectPaths, settings: Any, roles: Any) -> None:
    """A role version that names its own model, and every model a routing rule can send calls to (with
    their fallbacks): checked now (name known, keys set, cassette there), as the run's is, so that no
    step finds out later."""
    from aigentflow.models.catalog import check_keys, check_name
    from aigentflow.models.names import build_model_spec
    from aigentflow.models.routing import targets

    check_name(settings, settings.model.name)
    names = {spec.model for spec in roles.specs.values() if spec.model} | set(targets(settings))
    check_keys(settings, [settings.model.name, *sorted(names)])  # every unset key at once, the run's model's first
    for name in sorted(names - {settings.model.name}):
        build_model_spec(settings.model.model_copy(update={"name": name}), paths.cassettes_dir, record=False,
                         settings=settings)


@dataclass
class RunPlan:
    """A run validated and ready to record: nothing is written until ``record_run``."""

    request: str
    settings: Any
    flags: dict[str, Any]
    spec: Any
    roles: Any = None
    """The ``ActiveRoles``: the version of each role the run uses (recorded as its ``agents`` settings)."""
    flag_decisions: dict[str, dict[str, Any]] | None = None
    """The flags its context decided (a targeting rule, an A/B split, a rollout): their variant and reason."""
    tenant: str = "default"
    """The tenant it goes under: ``run.tenant``, or 'default' in single-tenant mode (``aigentflow.tenants``)."""
    run_id: str | None = None
    """The id to record the run under (``aigentflow run --run-id``, which the HTTP API uses); none: a new one."""


def preflight_role_tenants(roles: Any, tenant: str) -> None:
    """A role version generated from one tenant's runs (its spec's ``tenant``) serves only that tenant: its
    prompts came from that tenant's data, and its traces would hold the other's."""
    foreign = sorted(f"{role} {spec.version} (tenant {spec.tenant})" for role, spec in roles.specs.items()
                     if spec.tenant not in (None, tenant))
    if foreign:
        raise UsageError(f"run of tenant {tenant!r} would use role versions generated from another tenant's runs: "
                         f"{', '.join(foreign)}; choose another with `aigentflow config set agents.<role>.version "
                         "V` (`aigentflow agents list` shows each version's tenant).")


def preflight_git(paths: ProjectPaths, settings: Any, flags: Mapping[str, Any]) -> None:
    """A run that builds or merges needs git 2.38+ and an existing integration branch: say so up front."""
    if not {State.BUILDING, State.MERGING} & enabled_states(flags):
        return
    from aigentflow.gitops import names
    from aigentflow.gitops.runner import Git, require_git

    require_git()
    branch = settings.git.integration_branch
    if not branch:
        raise UsageError("git.integration_branch is not set and no branch was checked out at `aigentflow init`; "
                         "`aigentflow config set git.integration_branch main`")
    names.check_branch(branch)
    if Git(paths.root).rev(f"refs/heads/{branch}") is None:
        raise UsageError(f"the integration branch {branch!r} (git.integration_branch) does not exist in "
                         f"{paths.root}; create it or set another one")


def preflight_sandbox(settings: Any, flags: Mapping[str, Any]) -> None:
    """A run that builds runs agents' code: refuse it up front where the sandbox cannot confine that
    code's filesystem, unless the user opted in (build.sandbox_allow_unconfined)."""
    if not {State.BUILDING, State.TESTING, State.FIXING, State.MERGING} & enabled_states(flags):
        return
    from aigentflow.sandbox import check_confinement

    check_confinement(settings.build.sandbox_allow_unconfined)


def preflight_tenant(paths: ProjectPaths, wanted: str) -> str:
    """The tenant the run goes under, registered, active and within its quotas (a refusal is audited under it
    and its incident recorded); before Ray, before the run is recorded."""
    from aigentflow.tenants.quotas import admit

    store = SQLiteRunStore(paths.database)
    try:
        return admit(store, paths.root, wanted, new_run=True)
    finally:
        store.close()


def plan_run(paths: ProjectPaths, request: str, overrides: Mapping[str, str], *,
             record: str | None = None) -> RunPlan:
    """Check everything a run needs (config, request, flags, model, cassette) without recording it."""
    from aigentflow import faults
    from aigentflow.config.loader import load_config
    from aigentflow.models.names import build_model_spec
    from aigentflow.redact import Redactor

    faults.from_environment()  # a malformed AIGENTFLOW_FAULTS stops here, before anything is recorded
    if record:
        overrides = {**overrides, "model.record": os.path.abspath(record)}
    config = load_config(paths.root, overrides)
    settings = config.settings
    text = check_request(request, settings.run.max_request_chars)
    tenant = preflight_tenant(paths, settings.run.tenant)
    if settings.gdpr.require_consent:  # the GDPR enforcement point: no processing without consent
        from aigentflow.gdpr.consent import check_request as check_consent

        check_consent(paths.database, paths.state_dir, text, settings.gdpr.consent_purpose)
    from aigentflow.flags.provider import resolve_run_flags
    from aigentflow.run.versions import active_roles

    # through the OpenFeature provider, in the run's context (tenant, project, user, each flag's role)
    flags, decided = resolve_run_flags(paths, config)
    # Every broken spec file, an unknown role or version, a generated version not approved: refused here.
    roles = active_roles(paths, settings.agents, flags)
    preflight_role_tenants(roles, tenant)
    preflight_agents(flags, roles)
    preflight_role_models(paths, settings, roles)
    preflight_git(paths, settings, flags)
    preflight_sandbox(settings, flags)
    from aigentflow.mcp.config import load_servers

    load_servers(paths.root)  # a broken mcp.json (or an unset ${VAR} in it) stops here, with the file named
    spec = build_model_spec(settings.model, paths.cassettes_dir, record=bool(settings.model.record),
                            settings=settings)
    redactor = Redactor.from_environment(extra_patterns=settings.trace.redact_patterns)
    return RunPlan(redactor.redact_text(text), settings, flags, spec, roles, decided, tenant)


def record_run(paths: ProjectPaths, plan: RunPlan) -> RunRecord:
    """Record the planned run as CREATED."""
    store = SQLiteRunStore(paths.database)
    try:
        project = store.get_project()
        if project is None:
            raise UsageError(f"{paths.database} has no project yet; run `aigentflow init` first.")
        from aigentflow.tenants.quotas import admit

        tenant = admit(store, paths.root, plan.settings.run.tenant, new_run=True)  # again: it may have moved since
        settings = plan.settings.model_dump(mode="json")
        settings["run"]["tenant"] = tenant  # where it was routed (single-tenant mode): what every part of it reads
        # A cassette marked lenient makes the run lenient: recorded, so every later output can say so.
        settings["model"]["replay_lenient"] = bool(plan.spec.lenient)
        run_id = plan.run_id or new_run_id()
        canary: dict[str, str] = {}
        if plan.roles is not None:  # every role's version, so that a resume uses the same ones
            settings["agents"] = plan.roles.versions()
            canary = _canary_picks(paths, run_id, settings["agents"], tenant)
            settings["agents"].update({role: {"version": version} for role, version in canary.items()})
        run = store.create_run(
            project_id=project["id"], request=plan.request, model=plan.spec.name,
            settings=settings, flags=plan.flags, tenant_id=tenant, run_id=run_id,
        )
        store.append_audit("run.created", run.id, {"model": plan.spec.name, "request_chars": len(plan.request),
                                                   **({"canary": canary} if canary else {}),
                                                   **({"flags": plan.flag_decisions} if plan.flag_decisions else {})},
                           tenant_id=run.tenant_id)
    finally:
        store.close()
    return run


def _canary_picks(paths: ProjectPaths, run_id: str, versions: dict[str, dict[str, Any]],
                  tenant: str) -> dict[str, str]:
    """The candidate versions this run gets from active canaries (``aigentflow.roles.canary``)."""
    from aigentflow.roles.canary import active_canaries, canary_picks

    if not active_canaries(paths.state_dir):
        return {}
    from aigentflow.roles.registry import project_registry

    registry = project_registry(paths)
    # A version generated from one tenant's runs is that tenant's: no other tenant's run is a canary of it.
    known = {role: {e.spec.version for e in registry.versions(role) if e.spec.tenant in (None, tenant)}
             for role in registry.roles()}
    return canary_picks(paths.state_dir, run_id, versions, known)


def create_run(paths: ProjectPaths, request: str, overrides: Mapping[str, str], *,
               record: str | None = None) -> tuple[RunRecord, Any]:
    """Validate everything a run needs, then record it (CREATED). Returns the run and its ModelSpec."""
    plan = plan_run(paths, request, overrides, record=record)
    return record_run(paths, plan), plan.spec


def engine_options(run: RunRecord, spec: Any, record: str | None = None) -> Any:
    """How the Orchestrator drives ``run``; recording goes to ``record`` or the run's ``model.record``."""
    from aigentflow import faults
    from aigentflow.redact import Redactor
    from aigentflow.run.engine import EngineOptions

    config = run.config
    return EngineOptions(
        redactor=Redactor.from_environment(extra_patterns=config.trace.redact_patterns),
        model_spec=spec, record_path=record or config.model.record or None,
        agent_resource=config.run.agent_resource,
        agent_start_timeout_s=config.run.agent_start_timeout_s,
        driver_pid=os.getpid(),
        faults=faults.from_environment(),
    )


def spec_for_existing_run(paths: ProjectPaths, run: RunRecord) -> Any:
    from aigentflow import faults
    from aigentflow.models.names import build_model_spec
    from aigentflow.run.versions import active_roles

    faults.from_environment()  # a malformed AIGENTFLOW_FAULTS stops here, before Ray
    # Refuses, before Ray, a model whose key is gone since the run started, or a role version gone or broken.
    active_roles(paths, run.config.agents, run.flags)
    return build_model_spec(run.config.model, paths.cassettes_dir, record=bool(run.config.model.record),
                            settings=run.config)


def force_pause(paths: ProjectPaths, run_id: str, reason: str) -> None:
    """Move a run whose owner is gone to PAUSED (compare-and-set, retried if it moved meanwhile)."""
    store = SQLiteRunStore(paths.database)
    try:
        for _ in range(5):
            run = store.get_run(run_id)
            if is_terminal(State(run.state)) or run.state == State.PAUSED:
                return
            snapshot = fire(Snapshot(State(run.state), None), Event.PAUSE, enabled=enabled_states(run.flags))
            try:
                store.transition(run_id, expected_version=run.version, to_state=snapshot.state,
                                 return_to=snapshot.return_to, event=Event.PAUSE.value, reason=reason)
                store.append_audit("run.paused", run_id, {"reason": reason}, tenant_id=run.tenant_id)
                store.release(run_id)  # its owner is gone: nobody drives it until `aigentflow resume`
                return
            except StaleRun:
                time.sleep(0.05)
    finally:
        store.close()


def _store_call(paths: ProjectPaths, action: Callable[[RunStore], Any]) -> Any:
    store = SQLiteRunStore(paths.database)
    try:
        return action(store)
    finally:
        store.close()
