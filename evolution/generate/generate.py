"""``evolve generate``: from a finding (or a role) to a validated, tested candidate awaiting approval.

1. Refuse while the self-evolution kill switch is on. Read the finding (``evolution.patterns.store``), the
   role's incumbent (its active version) and its instructions, and cases from the role's traces
   (``cases.py``, redacted) and its past build calls (``regression.build_cases``: store + git), both only
   of the finding's tenant (a candidate is generated from one tenant's work, and records that tenant).
2. Compile the DSPy program (``program.py``) with the optimizer on the model (``dspy.LM`` over the same
   litellm names runs use; ``replay/<cassette>`` offline), the metric running the role on the cases, and
   choose the best proposal.
3. Validate it: the deterministic rules (``constitution.py``), then the model's critique; then its
   regression tests (``regression.regression_tests``) in the sandbox. Any failure rejects it: nothing is
   written to the registry (the evidence is kept under ``candidates/rejected/``).
4. Write the candidate (``candidates.py``), pending approval; audit ``evolve.generated``.
"""

from __future__ import annotations

import time
from importlib import resources
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from aigentflow.exceptions import AigentflowError, UsageError
from evolution.generate import candidates, cases, constitution
from evolution.generate.regression import regression_tests

OPTIMIZERS = ("bootstrap", "mipro", "gepa")
"""``program.OPTIMIZERS``, here so that a bad name is refused before DSPy is imported."""
CASSETTES = Path(str(resources.files("evolution.generate") / "cassettes"))


class GenerationError(AigentflowError):
    """The model or the optimizer failed, or the proposal broke the constitution (exit 1)."""


def load_context(paths: Any, role: str | None, pattern: str | None, tenant: str | None = None) -> dict[str, Any]:
    """The finding, its tenant, the incumbent, its instructions and the cases (the tenant's alone); UsageError
    for an unknown role, pattern or tenant, or a pattern of another tenant than ``tenant``."""
    from aigentflow.config.loader import load_config
    from aigentflow.prompts.compose import load_layers
    from aigentflow.redact import Redactor
    from aigentflow.roles.registry import project_registry
    from aigentflow.tracing.reader import read_spans
    from evolution.patterns.store import read_findings

    registry = project_registry(paths).require_valid()
    if role is not None and role not in registry.roles():
        raise UsageError(f"there is no role {role!r}; roles are: {', '.join(registry.roles())}. Nothing was generated.")
    findings = read_findings(paths.root)
    if tenant is not None:
        from evolution.patterns.miner import check_tenant

        check_tenant(paths.root, tenant, "nothing was generated", also={f["tenant_id"] for f in findings})
    finding = cases.pick_finding([f for f in findings if tenant is None or f["tenant_id"] == tenant or pattern],
                                 pattern, role)
    if finding is not None and tenant is not None and finding["tenant_id"] != tenant:
        raise UsageError(f"finding {pattern} is tenant {finding['tenant_id']}'s, not {tenant}'s; nothing was "
                         "generated. Give its own tenant, or leave --tenant out.")
    owner = finding["tenant_id"] if finding is not None else tenant or "default"
    if role is None:
        role = cases.finding_role(finding or {})
        if role not in registry.roles():
            raise UsageError(f"finding {pattern} is about {role!r}, which is not a role here; give --role.")
    config = load_config(paths.root)
    incumbent = registry.resolve(dict(config.settings.agents), require_approval=False).spec(role)
    if incumbent.deterministic:
        raise UsageError(f"{role} calls no model (its work is plain code): there are no instructions to generate.")
    layers = load_layers(paths.prompts_dir, paths.agents_dir)
    redactor = Redactor.from_environment()
    instructions = "\n\n".join(layers[name].strip() for name in incumbent.role_layers)
    finding = finding or {"id": None, "tenant_id": owner, "kind": "role", "title": f"improve {role} from its traces",
                          "count": 0, "details": {"role": role}}
    spans = read_spans(paths.traces_dir) if paths.traces_dir.exists() else []
    traced = cases.role_cases([s for s in spans if (s.get("tenant_id") or "default") == owner], role)
    inputs = cases.Inputs(
        role=role, current_spec=redactor.redact_text(cases.spec_view(incumbent)),
        current_instructions=redactor.redact_text(instructions),
        finding=redactor.redact_text(cases.finding_view(finding)),
        cases=redactor.redact(traced), finding_id=str(finding["id"]),
        cue=str(finding["details"].get("step_kind") or ""))
    return {"role": role, "tenant": owner, "finding": finding, "incumbent": incumbent, "inputs": inputs,
            "redactor": redactor, "flags": config.flags, "model": config.settings.model.name,
            "constitution": layers["constitution.md"], "layers": layers, "settings": config.settings}


def role_model_spec(name: str, paths: Any) -> Any:
    """The ``ModelSpec`` the candidate's role calls go to in its regression tests: the generation's model
    (a replay name carries its cassette, found as ``model_lm`` finds it)."""
    from aigentflow.models.spec import ModelSpec

    if not name.startswith("replay/"):
        return ModelSpec(name=name, max_transient_retries=0)
    from aigentflow.models.cassette import load_cassette, resolve_cassette_path

    cassette_name = name[len("replay/"):]
    own = CASSETTES / f"{cassette_name}.json"
    path = own if own.is_file() else resolve_cassette_path(cassette_name, paths.cassettes_dir)
    return ModelSpec(name=name, cassette=load_cassette(path), cassette_source=str(path), max_transient_retries=0)


def project_context(paths: Any) -> str:
    from aigentflow.project.facts import ProjectFacts, render_facts
    from aigentflow.store.sqlite import SQLiteRunStore

    store = SQLiteRunStore(paths.database)
    try:
        project = store.get_project() or {"facts": {"name": paths.root.name}}
    finally:
        store.close()
    return render_facts(ProjectFacts.model_validate(project["facts"]))


def case_runner(paths: Any, context: dict[str, Any], spec: Any, model: Any) -> Any:
    """Runs the candidate role on the cases from its traces (``regression.py``): the optimizer's metric and
    the regression tests; ``spec``: the candidate's (its prompt layer in place of the incumbent's)."""
    from aigentflow.checks.build import limits_from_settings
    from evolution.generate import regression

    return regression.CaseRunner(paths, regression.build_cases(paths, context["role"], context["tenant"]), spec,
                                 context["layers"],
                                 model, limits_from_settings(context["settings"].build), project_context(paths))


def model_lm(name: str, paths: Any) -> Any:
    """``dspy.LM`` for ``name``; a replay name loads its cassette (the project's, a shipped one, or one of
    ``evolution/generate/cassettes``) into the replay provider."""
    import dspy

    if not name.startswith("replay/"):
        from aigentflow.models.preflight import check_models

        check_models([name], paths.cassettes_dir)
        return dspy.LM(name, cache=False, num_retries=0, temperature=0.0)
    from aigentflow.models.cassette import load_cassette, resolve_cassette_path
    from aigentflow.models.replay import replay_provider

    cassette_name = name[len("replay/"):]
    own = CASSETTES / f"{cassette_name}.json"
    path = own if own.is_file() else resolve_cassette_path(cassette_name, paths.cassettes_dir)
    key = replay_provider().load(cassette_name, load_cassette(path))
    return dspy.LM(f"replay/{key}", cache=False, num_retries=0, temperature=0.0)


def checker(incumbent: Any, role: str, version: str, redactor: Any, tenant: str = "default") -> Any:
    """proposal -> its violations (a proposal whose fields do not even make a spec is one, too)."""
    from pydantic import ValidationError

    def check(proposal: Any) -> list[constitution.Violation]:
        try:
            spec = candidate_spec(incumbent, role, version, proposal, tenant)
        except (ValidationError, TypeError, ValueError) as exc:
            return [constitution.Violation("spec", "skills/budget", f"does not make a valid spec: {exc}")]
        return constitution.validate(spec, incumbent, str(proposal.instructions), redactor=redactor)

    return check


def candidate_spec(incumbent: Any, role: str, version: str, proposal: Any, tenant: str = "default") -> Any:
    from aigentflow.roles.spec import AgentSpec

    skills = proposal.skills if isinstance(proposal.skills, list | tuple) else None
    return AgentSpec.model_validate({
        **incumbent.model_dump(), "version": version, "origin": "generated", "approval": "pending", "tenant": tenant,
        "prompt_layers": (f"agents/{role}/{version}.md",), "skills": skills, "budget": proposal.budget,
        "description": incumbent.description})


def spec_file_data(spec: Any, incumbent: Any) -> dict[str, Any]:
    """What the candidate's spec file holds: the fields that differ from the incumbent, and its marks."""
    data, base = spec.model_dump(mode="json"), incumbent.model_dump(mode="json")
    keep = {"name", "version", "origin", "approval", "tenant", "prompt_layers"}
    return {k: v for k, v in data.items() if k in keep or v != base.get(k)}


def run_optimizer(inputs: Any, lm: Any, check: Any, optimizer: str, runner: Any = None) -> Any:
    from evolution.generate import program

    return _model_step(lambda: program.optimise(inputs, lm, check, optimizer, runner), "the optimizer")


def run_critique(inputs: Any, constitution_text: str, chosen: dict[str, Any], lm: Any) -> dict[str, Any]:
    from evolution.generate import program

    return _model_step(lambda: program.critique(inputs, constitution_text, chosen, lm), "the critique")


def _model_step(step: Any, what: str) -> Any:
    try:
        return step()
    except AigentflowError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure of the model or the optimizer ends the generation
        from aigentflow.models.cassette import MISS_MARKER

        text = " ".join(str(exc).split())[:900]
        if MISS_MARKER in text:
            raise GenerationError(f"the replay model has no recording for a prompt of the generation: {text}. "
                                  "Record the cassette again (`python -m evolution.generate.record`) or use a "
                                  "real model (--model provider/name). Nothing was generated.") from None
        if type(exc).__name__ == "AdapterParseError":
            raise GenerationError(f"the model's reply did not parse ({what}): {text}. Nothing was generated.") \
                from None
        raise GenerationError(f"{what} failed: {type(exc).__name__}: {text}. Nothing was generated.") from None


def generate(paths: Any, *, role: str | None, pattern: str | None, optimizer: str = "bootstrap",
             model: str | None = None, lm: Any = None, role_model: Any = None,
             tenant: str | None = None) -> dict[str, Any]:
    """Generate one candidate; returns its evidence. ``tenant``: pick the finding among that tenant's only (a
    ``pattern`` must then be its); ``lm``: a DSPy LM to use instead of ``model``;
    ``role_model``: the ``ModelSpec`` of the candidate's role calls in its tests (default: ``model``'s)."""
    from evolution.patterns.store import now_iso
    from evolution.rollout.switches import refuse_if_disabled

    started = time.monotonic()
    refuse_if_disabled(paths.root, "nothing was generated")
    if optimizer not in OPTIMIZERS:
        raise UsageError(f"--optimizer {optimizer!r} is not one of {', '.join(OPTIMIZERS)}; nothing was generated.")
    context = load_context(paths, role, pattern, tenant)
    role, incumbent, inputs, flags = context["role"], context["incumbent"], context["inputs"], context["flags"]
    tenant = context["tenant"]
    if not flags.get("evolution.agentGeneration", False):
        raise UsageError("agent generation is off (evolution.agentGeneration); turn it on with "
                         "`aigentflow config set flags.evolution.agentGeneration true` or the v2 preset.")
    limit = int(flags.get("evolution.maxGeneratedAgents", 5))
    if len(living := candidates.alive(paths)) >= limit:
        raise UsageError(f"{len(living)} generated versions are alive (pending or approved), the limit of "
                         f"evolution.maxGeneratedAgents ({limit}): reject one first (`aigentflow evolve list`).")
    version = candidates.next_version(paths, role, incumbent.version)
    key = f"{role}@{version}"
    check = checker(incumbent, role, version, context["redactor"], tenant)
    model_name = model or context["model"]
    if lm is None:
        lm = model_lm(model_name, paths)
    shape = candidate_spec(incumbent, role, version, SimpleNamespace(skills=incumbent.skills, budget=incumbent.budget),
                           tenant)
    runner = case_runner(paths, context, shape, role_model or role_model_spec(model_name, paths))
    outcome = run_optimizer(inputs, lm, check, optimizer, runner)
    chosen = outcome.chosen
    evidence: dict[str, Any] = {
        "id": key, "tenant_id": tenant, "role": role, "version": version, "incumbent": incumbent.key,
        "created_at": now_iso(),
        "finding": context["finding"], "cases": inputs.cases, "optimizer": optimizer, "model": model_name,
        "model_calls": outcome.model_calls, "candidates": outcome.candidates, "chosen": chosen,
        "program_state": outcome.program_state, "seconds": None, "decisions": []}
    violations = check(_proposal(chosen))
    if not violations:
        evidence["critique"] = run_critique(inputs, context["constitution"], chosen, lm)
        evidence["model_calls"] = outcome.model_calls + evidence["critique"]["model_calls"]
        if not evidence["critique"]["complies"]:
            concerns = "; ".join(evidence["critique"]["concerns"]) or evidence["critique"]["reasoning"]
            violations = [constitution.Violation("critique", "instructions", f"the model's critique: {concerns}")]
    evidence["programs"] = outcome.programs
    spec = candidate_spec(incumbent, role, version, _proposal(chosen), tenant) if not violations else None
    if spec is not None:
        before = runner.model_calls
        runner.spec = spec
        tests = _model_step(lambda: regression_tests(runner, chosen["instructions"]), "the regression tests")
        evidence["tests"] = tests
        evidence["model_calls"] += runner.model_calls - before
        evidence["sandbox_runs"] = runner.sandbox_runs + len(tests["cases"])
        if not tests["passed"]:
            violations = [constitution.Violation("tests", "regression", f"the generated tests fail: {tests['why']}")]
    evidence["role_model_calls"] = runner.model_calls  # of model_calls; the rest went through DSPy
    evidence["validation"] = {"passed": not violations, "violations": [v.as_dict() for v in violations]}
    evidence = context["redactor"].redact(evidence)
    if violations:
        evidence["status"] = "rejected"
        evidence["seconds"] = round(time.monotonic() - started, 2)
        from aigentflow.models.cassette import write_json_atomic

        write_json_atomic(candidates.evidence_dir(paths) / "rejected" / f"{key}.json", evidence)
        listed = "\n  ".join(str(v) for v in violations)
        raise GenerationError(f"the proposal for {key} was rejected; nothing was written to the registry:\n  "
                              f"{listed}\nEvidence: {candidates.evidence_dir(paths) / 'rejected' / f'{key}.json'}")
    evidence["status"] = "awaiting approval"
    evidence["seconds"] = round(time.monotonic() - started, 2)
    candidates.write_candidate(paths, role, version, spec_file_data(spec, incumbent), chosen["instructions"], evidence)
    audit(paths, "evolve.generated", {"id": key, "finding": context["finding"]["id"], "score": chosen["score"],
                                      "optimizer": optimizer, "model_calls": evidence["model_calls"]}, tenant)
    return evidence


def _proposal(candidate: dict[str, Any]) -> Any:
    from types import SimpleNamespace

    return SimpleNamespace(**{k: candidate[k] for k in ("instructions", "skills", "budget", "summary")})



def audit(paths: Any, event: str, data: dict[str, Any], tenant: str = "default") -> None:
    """Append ``event`` to the store's audit log under ``tenant`` (the candidate's)."""
    from aigentflow.store.sqlite import SQLiteRunStore

    store = SQLiteRunStore(paths.database)
    try:
        store.append_audit(event, None, data, tenant_id=tenant)
    finally:
        store.close()


def revalidate(paths: Any, key: str) -> list[str]:
    """Why the candidate's files (perhaps edited by hand) are not valid now: the registry's problems with
    its spec file, and the constitution's violations against its incumbent. Empty when it is valid."""
    from aigentflow.prompts.compose import load_layers
    from aigentflow.redact import Redactor
    from aigentflow.roles.registry import project_registry

    role, version = candidates.split_key(key)
    registry = project_registry(paths)
    spec_path = paths.agents_dir / role / f"{version}.json"
    mine = [str(p) for p in registry.problems if p.where == str(spec_path)]
    if mine:
        return mine
    spec = registry.get(role, version).spec
    layers = load_layers(paths.prompts_dir, paths.agents_dir)
    instructions = "\n\n".join(layers.get(name, "") for name in spec.role_layers)
    return [str(v) for v in constitution.validate(spec, registry.default(role).spec, instructions,
                                                  redactor=Redactor.from_environment())]
