"""The Orchestrator: owns one run and drives it with the agent actors (rule-based routing).

It is the run's owner: the only writer of the run's rows and its trace segments. It holds the
agents' handles, and answers ``check_controls`` from agents before each of their model calls. It is
a plain object living in its node's run host (``actors/run_host.py``), one per run, driving on one of
the host's threads; the host answers the agents' ``check_controls`` calls on its other threads.
"""

from __future__ import annotations

import re
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aigentflow import faults
from aigentflow.exceptions import AigentflowError, RunAbandoned, RunFailure, RunPaused, UsageError
from aigentflow.project.paths import ProjectPaths
from aigentflow.run.engine import EngineOptions, RunEngine, pause_reason
from aigentflow.run.protocol import AgentCall, AgentResult
from aigentflow.run.statemachine import base_step
from aigentflow.store.sqlite import SQLiteRunStore

if TYPE_CHECKING:
    from aigentflow.config.settings import BuildSettings, Settings

AGENT_START_TIMEOUT_S = 120.0
MCP_TOOL = re.compile(r"[A-Za-z0-9_-]+/(\*|[A-Za-z0-9_.:-]+)")
"""An MCP tool pattern (``server/tool``, ``server/*``) as written in a skill's ``allowed-tools``."""
STOP_POLL_S = 0.25
"""How often a step's wait looks whether its run was stopped at once (a second Ctrl-C)."""


class AgentsUnavailable(UsageError):
    """The run's agents could not be started on this cluster."""


class Orchestrator:
    role = "orchestrator"

    def __init__(self, project_root: str, run_id: str, options: EngineOptions, host: Any = None) -> None:
        """``host``: the ``RunHost`` this run lives in (it gives the project's Git Agent); None outside one."""
        self.paths = ProjectPaths(Path(project_root))
        self.run_id = run_id
        self.options = options
        faults.install(options.faults)  # the fault points a crash test turned on (the engine's, the build's)
        self.host = host
        self.stopped = threading.Event()
        """Set by the host when the driver stopped the run at once: the run writes nothing more."""
        self.handles: dict[str, Any] = {}
        self._controls_lock = threading.Lock()
        self._controls_store: SQLiteRunStore | None = None
        self._progress_lock = threading.Lock()
        self._progress_store: SQLiteRunStore | None = None
        self._recorded_run: tuple[dict[str, Any], Settings] | None = None
        self._project_facts: dict[str, Any] | None = None
        self._equip_lock = threading.Lock()
        self._skill_catalog: Any = None
        self._project_terms: str | None = None
        self._tool_catalogs: dict[tuple[str, tuple[str, ...]], dict[str, Any]] = {}
        self._router: Any = None
        self._role_models: dict[str, Any] = {}
        self._shadow_specs: dict[str, Any] = {}
        self.roles: Any = options.roles
        """The run's ``ActiveRoles`` (resolved by its engine from the run's recorded versions)."""
        self.shadows: Any = None
        """The run's ``ShadowPlayer`` (its engine's): the candidates that shadow a workflow's edit steps."""

    def agent(self, role: str, version: str | None = None) -> Any:
        """The handle of ``role``'s actor (started on first use); ``model_gateway`` is the cluster's gateway.
        ``version``: another version of the role than the run's (a shadow's), its own actor."""
        if version and version != self.roles.spec(role).version:
            key = f"{role}@{version}"
            if key not in self.handles:
                from actors.factory import agent_actor

                self.handles[key] = agent_actor(self.shadow_spec(role, version), self.options.agent_resource)
            return self.handles[key]
        if role == "git_agent":
            return self.git_agent()
        if role not in self.handles:
            from actors.factory import agent_actor, model_gateway_actor

            resource = self.options.agent_resource
            self.handles[role] = (model_gateway_actor(resource) if role == "model_gateway"
                                  else agent_actor(self.roles.spec(role), resource))
        return self.handles[role]

    def git_agent(self) -> Any:
        """The project's Git Agent, on this (the repository's) node: the host's, kept across runs."""
        if "git_agent" not in self.handles:
            if self.host is not None:
                self.handles["git_agent"] = self.host.git_agent_for(self.run_id, str(self.paths.root),
                                                                    self.options.faults)
            else:
                from actors.factory import git_agent_actor

                self.handles["git_agent"] = git_agent_actor(str(self.paths.root), self.options.faults)
        return self.handles["git_agent"]

    # -- whether the run's owner is still there -----------------------------------------------------

    def driver_gone(self) -> str | None:
        """Why the run must stop because the process that drives it is gone (``kill -9``), or None."""
        from aigentflow.store.records import process_alive

        pid = self.options.driver_pid
        if pid and not process_alive(pid):
            return f"its driver (process {pid}) is gone"
        return None

    def owner_check(self) -> str | None:
        """The engine's question at every boundary: raises ``RunAbandoned`` if the run was stopped at
        once; else why it must pause (its driver is gone), or None."""
        if self.stopped.is_set():
            raise RunAbandoned(f"run {self.run_id} was stopped by its driver")
        return self.driver_gone()

    def _recorded(self) -> tuple[dict[str, Any], Settings]:
        """The run's flags and settings as recorded when it was created (they never change after)."""
        if self._recorded_run is None:
            store = SQLiteRunStore(self.paths.database, readonly=True)
            try:
                run = store.get_run(self.run_id)
            finally:
                store.close()
            self._recorded_run = (run.flags, run.config)
        return self._recorded_run

    @property
    def flags(self) -> dict[str, Any]:
        return self._recorded()[0]

    @property
    def settings(self) -> Settings:
        """The run's settings, typed (``RunRecord.config``)."""
        return self._recorded()[1]

    @property
    def build_settings(self) -> BuildSettings:
        """The run's ``build`` settings, with the test command `aigentflow init` detected when none is set
        (what the engine gives the build steps as ``inputs["settings"]["build"]``)."""
        build = self.settings.build
        return build if build.test_command else build.with_detected_test_command(self.project_facts())

    def project_facts(self) -> dict[str, Any]:
        """The facts `aigentflow init` recorded about the project (read once)."""
        if self._project_facts is None:
            store = SQLiteRunStore(self.paths.database, readonly=True)
            try:
                self._project_facts = (store.get_project() or {}).get("facts", {})
            finally:
                store.close()
        return self._project_facts

    def warm_up(self, roles: list[str], timeout_s: float = AGENT_START_TIMEOUT_S) -> None:
        """Start the run's agents together, and the cluster's Model Gateway (which imports litellm,
        seconds; the agents themselves start in a fraction of a second).

        An agent that cannot start in time (no node offers what it needs, a node that never came up)
        is a clear error, not a run that waits forever."""
        import ray

        from actors.factory import forget_actor

        if any(not self.roles.spec(role).deterministic for role in roles):
            roles = [*roles, "model_gateway"]
        pending = {self.agent(role).ping.remote(): role for role in roles}
        ready, waiting = ray.wait(list(pending), num_returns=len(pending), timeout=timeout_s)
        dead = []
        for ref in ready:  # a kept handle of an actor that died for good since the last run: ask for it anew
            try:
                ray.get(ref)
            except ray.exceptions.RayActorError:
                dead.append(ref)
        if dead:
            roles_dead = [pending.pop(ref) for ref in dead]
            for role in roles_dead:
                forget_actor(self.handles.pop(role))
            retried = {self.agent(role).ping.remote(): role for role in roles_dead}
            pending.update(retried)
            more, late_retries = ray.wait(list(retried), num_returns=len(retried), timeout=timeout_s)
            ready = [ref for ref in ready if ref not in dead] + more
            waiting = [*waiting, *late_retries]
        if waiting:
            late = ", ".join(sorted(pending[ref] for ref in waiting))
            for role in {pending[ref] for ref in waiting} - {"git_agent"}:  # do not leave them queued on the cluster
                handle = self.handles.pop(role)
                forget_actor(handle)
                ray.kill(handle, no_restart=True)
            need = f"nodes offering the resource {self.options.agent_resource!r} (run.agent_resource)" \
                if self.options.agent_resource else "a node with room for them"
            raise AgentsUnavailable(
                f"the {late} agent(s) did not start within {timeout_s:g} s; they need {need}. Cluster "
                f"resources now: {ray.available_resources()}"
            )
        ray.get(ready)

    def _invoke(self, role: str, call: AgentCall) -> AgentResult:
        import ray

        workflow_path = self.roles.workflow(base_step(call.step), self.flags)
        if workflow_path:  # the step's lead (or a helper the flags turn on) runs it as a workflow of calls
            from actors import load_class

            workflow = load_class(workflow_path)(self, call)
            try:
                return self._with_git_usage(workflow.run)
            finally:  # the shadows its edit steps started (``actors.workflow.shadow``) end with the step
                workflow.shadows.join()
        me = ray.get_runtime_context().current_actor
        pending = self.ask(role, call, me)
        deadline = time.monotonic() + call.timeout_s
        while True:  # waits in short slices, so that a run stopped at once stops waiting at once
            ready, _ = ray.wait([pending], timeout=max(0.0, min(STOP_POLL_S, deadline - time.monotonic())))
            if ready:
                return ray.get(ready[0])
            if self.stopped.is_set():
                ray.cancel(pending)
                raise RunAbandoned(f"run {self.run_id} was stopped by its driver during the {role} step")
            if time.monotonic() >= deadline:
                ray.cancel(pending)
                raise TimeoutError(f"the {role} step took longer than run.step_timeout_s ({call.timeout_s:g} s)")

    # -- what each agent call carries besides its task: skills and tools ------------------------------

    def ask(self, role: str, call: AgentCall, me: Any) -> Any:
        """Send ``call`` to ``role``'s agent, equipped with its skills and tools; the result's ObjectRef."""
        if self.stopped.is_set():  # a workflow of a run stopped at once starts nothing more
            raise RunAbandoned(f"run {self.run_id} was stopped by its driver")
        return self.agent(role, call.agent_version if call.shadow else None).run.remote(self.equip(role, call), me)

    def shadow_spec(self, role: str, version: str) -> Any:
        """The ``AgentSpec`` of a version of ``role`` that shadows the run's (``aigentflow.run.shadow``)."""
        with self._equip_lock:
            key = f"{role}@{version}"
            if key not in self._shadow_specs:
                from aigentflow.roles.registry import project_registry

                self._shadow_specs[key] = project_registry(self.paths).get(role, version).spec
            return self._shadow_specs[key]

    def equip(self, role: str, call: AgentCall) -> AgentCall:
        """``call`` as the active version of ``role`` makes it (its name and version for the spans, its prompt
        layers, model and budget), with the skills picked for it (a prompt layer, and what was picked) and the
        MCP tools ``role`` may call (with the run's Tool Router to call them through)."""
        from dataclasses import replace

        spec = self.shadow_spec(role, call.agent_version) if call.shadow else self.roles.spec(role)
        extra: dict[str, Any] = {"agent_name": spec.name, "agent_version": spec.version,
                                 "agent_origin": spec.origin, "prompt_layers": spec.role_layers}
        if spec.budget is not None:
            extra["budget"] = spec.budget if call.budget is None else min(call.budget, spec.budget)
        from aigentflow.models.routing import route

        routed = route(self.settings, role, call.step)  # routing.rules first, then the version's own model
        wanted = routed[0] if routed else spec.model
        if wanted and wanted != call.model.name:
            extra["model"] = self._role_model(wanted)
        picks = self._pick_skills(role, call)
        if spec.skills is not None:
            withheld = tuple(p.skill.name for p in picks if p.skill.name not in spec.skills)
            if withheld:
                extra["skills_withheld"] = withheld
            picks = [p for p in picks if p.skill.name in spec.skills]
        if picks:
            from aigentflow.skills import render_layer

            extra.update(skills=render_layer(picks), skill_picks=tuple(
                {"name": p.skill.name, "source": p.skill.source, "score": p.score, "matched": list(p.matched),
                 "step": call.step}
                for p in picks))
        router = self.tool_router()
        if router is not None:
            extra.update(self._tools_for(router, role, picks))
        return replace(call, **extra)

    def _role_model(self, name: str) -> Any:
        """The ``ModelSpec`` of a model a role version names (its own, not the run's): the run's model
        settings with that name (checked at run start, so a missing key never gets this far)."""
        with self._equip_lock:
            if name not in self._role_models:
                from aigentflow.models.names import build_model_spec

                self._role_models[name] = build_model_spec(self.settings.model.model_copy(update={"name": name}),
                                                           self.paths.cassettes_dir, record=False,
                                                           settings=self.settings)
            return self._role_models[name]

    def _tools_for(self, router: Any, role: str, picks: list[Any]) -> dict[str, Any]:
        """The ``AgentCall`` fields that give ``role`` its MCP tools: those its allowlist names, and
        those a picked skill names in its allowed-tools (``server/tool``, ``server/*``; other entries,
        another tool's names like Read or Bash(...), mean nothing here)."""
        import ray

        grants = tuple(sorted({t for p in picks for t in p.skill.allowed_tools if MCP_TOOL.fullmatch(t)}))
        key = (role, grants)
        with self._equip_lock:
            if key not in self._tool_catalogs:
                self._tool_catalogs[key] = ray.get(router.catalog.remote(role, grants))
        catalog = self._tool_catalogs[key]
        fields: dict[str, Any] = {"tool_grants": grants} if grants else {}
        notices = tuple(f"MCP server {p['server']!r} offers no tools to the {role}: {p['error']}"
                        for p in catalog["problems"])
        if notices:
            fields["notices"] = notices
        if catalog["tools"]:
            limits = self.settings.tools
            fields.update(tools=tuple(catalog["tools"]), tool_router=router, tool_limits={
                "max_rounds": limits.max_rounds, "max_calls_per_round": limits.max_calls_per_round,
                "max_result_chars": limits.max_result_chars})
        return fields

    def _pick_skills(self, role: str, call: AgentCall) -> list[Any]:
        options = self.settings.skills
        if not options.enabled or not options.limit:
            return []
        from aigentflow.skills import discover, select

        with self._equip_lock:
            if self._skill_catalog is None:
                self._skill_catalog = discover(self.paths.root)
            if self._project_terms is None:
                facts = self.project_facts()
                self._project_terms = " ".join([facts.get("primary_language") or "", *facts.get("languages", {}),
                                                *facts.get("frameworks", []), facts.get("test_command") or ""])
        task = call.inputs.get("task") if isinstance(call.inputs.get("task"), dict) else {}
        # What the agent is asked to do (its role, step, task and the request) and what it works with (the
        # names of its inputs: a diff, lint findings, failing tests); what the project is made of is context.
        text = "\n".join([role.replace("_", " "), call.step.split("/")[0], call.request, str(task.get("title", "")),
                          str(task.get("description", "")), *map(str, task.get("acceptance_criteria", [])),
                          " ".join(call.inputs)])
        return select(self._skill_catalog, text, context=self._project_terms, limit=options.limit,
                      min_score=options.min_score)

    def tool_router(self) -> Any:
        """The run's Tool Router, started on first need; None when no MCP server is configured."""
        with self._equip_lock:
            if self._router is None:
                from aigentflow.mcp.config import load_servers

                if not load_servers(self.paths.root):
                    self._router = False
                else:
                    from actors.factory import make_actor, this_node
                    from actors.tool_router import ToolRouter

                    # A role version's own allowlist (its spec's ``tools``) replaces the run's tools.<role>.
                    tools = self.settings.tools.model_copy(update={
                        role: list(spec.tools) for role, spec in self.roles.specs.items() if spec.tools is not None})
                    self._router = make_actor(ToolRouter, str(self.paths.root), tools,
                                              self.options.redactor, name=f"tools:{self.run_id}",
                                              max_concurrency=16, scheduling_strategy=this_node())
            return self._router or None

    def _close_tools(self) -> None:
        if self._router:
            import ray

            try:
                ray.get(self._router.close.remote(), timeout=30)
            except Exception as exc:  # noqa: BLE001 (a router already gone: its servers' stdin closed with it)
                print(f"aigentflow: the Tool Router of run {self.run_id} did not close cleanly: {exc}")
            ray.kill(self._router, no_restart=True)
            self._router = None

    def _with_git_usage(self, work: Any) -> AgentResult:
        """Run a workflow step; its output records the git it cost (``git``: seconds and commands of
        the run's Git Agent during the step), for the benchmarks' breakdown."""
        import ray

        before = ray.get(self.git_agent().usage.remote())
        result: AgentResult = work()
        after = ray.get(self.git_agent().usage.remote())
        result.output = {**result.output, "git": {"seconds": round(after["seconds"] - before["seconds"], 3),
                                                  "commands": int(after["commands"] - before["commands"])}}
        return result

    def drive(self, resume: bool = False) -> dict[str, Any]:
        """Run to a stop; returns {state, error, outcome} (outcome: completed/paused/failed/waiting, or
        abandoned: stopped at once by its driver, which records the pause itself)."""
        engine = RunEngine(self.paths, self.run_id, self._invoke, self.options,
                           owner_check=self.owner_check if self.host is not None else None)
        self.roles, self.shadows = engine.roles, engine.shadows
        try:
            self.warm_up(engine.roles_needed(), self.options.agent_start_timeout_s)
            run = engine.drive(resume=resume)
            outcome = "completed" if run.state == "COMPLETED" else "waiting"
            return {"state": run.state, "error": run.error, "outcome": outcome}
        except RunPaused as exc:
            return {"state": "PAUSED", "error": str(exc), "outcome": "paused"}
        except RunFailure as exc:
            return {"state": "FAILED", "error": str(exc), "outcome": "failed"}
        except AigentflowError as exc:
            return {"state": engine.store.get_run(self.run_id).state, "error": str(exc), "outcome": "error",
                    "exit_code": exc.exit_code}
        except RunAbandoned as exc:
            return {"state": engine.store.get_run(self.run_id).state, "error": str(exc), "outcome": "abandoned"}
        finally:
            self._close_tools()
            self.close()
            engine.store.close()

    def close(self) -> None:
        """Close what this run opened in its host's process (the host outlives the run)."""
        with self._controls_lock:
            if self._controls_store is not None:
                self._controls_store.close()
                self._controls_store = None
        with self._progress_lock:
            if self._progress_store is not None:
                self._progress_store.close()
                self._progress_store = None

    def task_progress(self, data: dict[str, Any]) -> None:
        """Record the phase a build task reached (a ``task.progress`` audit entry), for whoever follows the
        run: the driver reads it from the store for its live display and JSON lines. Called from the build's
        task threads; a run stopped at once writes nothing more."""
        from aigentflow.run.progress import TASK_PROGRESS

        self.record(TASK_PROGRESS, data)

    def record(self, event: str, data: dict[str, Any]) -> None:
        """Append an audit entry of this run from a workflow's threads (``task.progress``; ``secret.withheld``:
        files kept out of a prompt because they hold what looks like a secret, by path, never the text)."""
        if self.stopped.is_set():
            return
        with self._progress_lock:
            if self._progress_store is None:
                self._progress_store = SQLiteRunStore(self.paths.database)
            self._progress_store.append_audit(event, self.run_id, data, tenant_id=self.settings.run.tenant)

    def check_controls(self, run_id: str) -> str | None:
        """Why agents of this run must not call their model now, or None. Reads the store afresh."""
        if self.stopped.is_set():
            return "the run was stopped (a second Ctrl-C or SIGTERM)"
        if self.host is not None:
            gone = self.driver_gone()
            if gone:
                return gone
        with self._controls_lock:
            if self._controls_store is None:
                self._controls_store = SQLiteRunStore(self.paths.database, readonly=True)
            return pause_reason(self._controls_store, self._controls_store.get_run(run_id))

    def ping(self) -> str:
        return self.role
