"""``run_tournament``: schedule the matches, fan them out as Ray tasks, and record each result (with its
rating update) in the owner, one at a time, as it arrives.

The schedule is fixed by the tournament (match ``n`` plays pair ``n % P`` of the versions on task
``(n // P) % T``), so a tournament killed at any point is resumed by playing exactly the matches whose
keys are not recorded yet: `tournament run` with the same role, versions and size continues the
latest unfinished one."""

from __future__ import annotations

import itertools
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aigentflow.exceptions import UsageError
from evolution.tournament import store
from evolution.tournament.play import MatchPlan
from evolution.tournament.tasks import BenchmarkTask, tasks_for
from evolution.tournament.versions import playable

DEFAULT_MODEL = "replay/tournament"
"""The shipped suite's cassette (``suite/cassette.json``): every version of backend_developer, offline."""


@dataclass
class Options:
    role: str
    versions: list[str] | None = None
    matches: int | None = None
    model: str = DEFAULT_MODEL
    address: str | None = None
    tasks: list[str] | None = None
    on_match: Callable[[dict[str, Any]], None] | None = field(default=None, repr=False)
    stop: Callable[[], str | None] | None = field(default=None, repr=False)
    """Asked between matches: a reason to stop (the evolution kill switch), or None."""
    on_schedule: Callable[[dict[str, dict[str, int]]], None] | None = field(default=None, repr=False)
    """Told before the matches are played: each batch (a pair of versions, ``batch_of``) with its
    ``planned`` matches and those ``recorded`` already (a resumed tournament)."""


def batch_of(version_a: str, version_b: str) -> str:
    """The batch a match belongs to: its pair of versions, whichever side each played."""
    return " vs ".join(sorted((version_a, version_b)))


def model_spec(name: str, paths: Any) -> Any:
    from aigentflow.models.cassette import load_cassette, resolve_cassette_path
    from aigentflow.models.spec import ModelSpec
    from evolution.tournament.record import CASSETTE

    if name == DEFAULT_MODEL:
        return ModelSpec(name=name, cassette=load_cassette(CASSETTE), cassette_source=str(CASSETTE))
    if name.startswith("replay/"):
        path = resolve_cassette_path(name[len("replay/"):], paths.cassettes_dir)
        return ModelSpec(name=name, cassette=load_cassette(path), cassette_source=str(path))
    from aigentflow.models.preflight import check_models

    check_models([name], paths.cassettes_dir)
    return ModelSpec(name=name)


def schedule(tournament_id: str, role: str, versions: list[str], tasks: list[BenchmarkTask], planned: int,
             specs: dict[str, Any]) -> list[MatchPlan]:
    pairs = list(itertools.combinations(versions, 2))
    plans = []
    for number in range(planned):
        a, b = pairs[number % len(pairs)]
        rounds = number // len(pairs)
        if rounds % 2:
            a, b = b, a  # sides alternate, round by round
        task = tasks[rounds % len(tasks)]
        plans.append(MatchPlan(tournament_id, number, f"{tournament_id}/{number}", role, task, specs[a], specs[b]))
    return plans


def _check_grading(tasks: list[BenchmarkTask], limits: dict[str, Any], remote: Any) -> None:
    """Every task's hidden tests must run (on the bare snapshot) before anything is recorded."""
    import ray

    problems = [p for p in ray.get([remote.remote(t, limits) for t in tasks]) if p]
    if problems:
        raise UsageError("a benchmark task cannot be graded, so no tournament was started:\n  " + "\n  ".join(problems))


def grading_problem(task: BenchmarkTask, limits: dict[str, Any]) -> str | None:
    from evolution.tournament.play import GradingUnavailable, grade

    try:
        grade(task, [], limits)
    except GradingUnavailable as exc:
        return str(exc)
    return None


def run_tournament(paths: Any, options: Options) -> dict[str, Any]:
    """Play (or resume) a tournament; returns its summary and the role's leaderboard."""
    from aigentflow.config.loader import load_config

    config = load_config(paths.root)
    versions_known = playable(paths)
    role = options.role
    names = versions_known.version_names(role)
    if not names:
        raise UsageError(f"there is no role {role!r}; roles are: {', '.join(versions_known.registry.roles())}")
    versions = options.versions or names
    if len(set(versions)) != len(versions):
        raise UsageError(f"--versions names a version twice: {','.join(versions)}")
    specs = {v: versions_known.spec(role, v) for v in versions}
    if len(versions) < 2:
        raise UsageError(f"a tournament needs at least two versions of {role}; it has {', '.join(names)}"
                         + (" (add one as .aigentflow/agents/<role>/<version>.toml)" if len(names) < 2 else ""))
    tasks = tasks_for(role, paths.state_dir / "benchmarks")
    if options.tasks:
        unknown = sorted(set(options.tasks) - {t.id for t in tasks})
        if unknown:
            raise UsageError(f"no benchmark task {', '.join(unknown)} for {role}; its tasks: "
                             f"{', '.join(t.id for t in tasks)}")
        tasks = [t for t in tasks if t.id in options.tasks]
    pairs = len(versions) * (len(versions) - 1) // 2
    planned = options.matches if options.matches is not None else pairs * len(tasks)
    if planned < 1:
        raise UsageError("--matches must be at least 1")
    model = model_spec(options.model, paths)
    limits = {"allow_unconfined": config.settings.build.sandbox_allow_unconfined,
              "env_passthrough": list(config.settings.build.env_passthrough)}

    from aigentflow.cluster.connect import connect_ray

    connect_ray(options.address)  # first: it prepares Ray's environment before Ray is imported
    import ray

    cpus = max(config.settings.build.task_cpus, 0.01)
    play_remote = ray.remote(num_cpus=cpus, max_retries=0)(_play)
    resumed = store.unfinished_tournament(paths.root, role, versions, planned)
    if resumed is None:
        _check_grading(tasks, limits, ray.remote(num_cpus=cpus)(grading_problem))
        tournament_id = "t-" + uuid.uuid4().hex[:10]
        store.create_tournament(paths.root, tournament_id, role, versions, [t.id for t in tasks], planned,
                                options.model)
    else:
        tournament_id = resumed["id"]
        by_id = {t.id: t for t in tasks}
        missing = [t for t in resumed["tasks"] if t not in by_id]
        if missing:
            raise UsageError(f"tournament {tournament_id} played tasks that are gone ({', '.join(missing)}); "
                             "restore them to resume it")
        tasks = [by_id[t] for t in resumed["tasks"]]
    done = store.recorded_keys(paths.root, tournament_id)
    every = schedule(tournament_id, role, versions, tasks, planned, specs)
    plans = [p for p in every if p.key not in done]
    if options.on_schedule is not None:
        batches: dict[str, dict[str, int]] = {}
        for plan in every:
            batch = batches.setdefault(batch_of(plan.spec_a.version, plan.spec_b.version),
                                       {"planned": 0, "recorded": 0})
            batch["planned"] += 1
            batch["recorded"] += plan.key in done
        options.on_schedule(batches)
    return _play_all(paths, tournament_id, plans, len(done), planned, model, versions_known.layers, limits,
                     play_remote, options)


def _play(plan: MatchPlan, layers: Any, model: Any, limits: dict[str, Any]) -> dict[str, Any]:
    from evolution.tournament.play import play_match

    return play_match(plan, layers, model, limits)


def _play_all(paths: Any, tournament_id: str, plans: list[MatchPlan], already: int, planned: int, model: Any,
              layers: dict[str, str], limits: dict[str, Any], play_remote: Any, options: Options) -> dict[str, Any]:
    import ray

    from aigentflow.redact import Redactor
    from aigentflow.tracing.writer import SegmentWriter

    started = time.perf_counter()
    layers_ref, model_ref = ray.put(layers), ray.put(model)
    pending = {play_remote.remote(p, layers_ref, model_ref, limits): p for p in plans}
    recorded, unavailable, stopped = 0, [], None
    writer = SegmentWriter(Path(paths.traces_dir), Redactor.from_environment())
    try:
        while pending:
            if options.stop is not None and (stopped := options.stop()):
                break
            ready, _ = ray.wait(list(pending), num_returns=1)
            pending.pop(ready[0])
            result = ray.get(ready[0])
            if "unavailable" in result:
                unavailable.append(result["unavailable"])
                continue
            spans = result.pop("spans", [])
            if store.record_match(paths.root, result):
                recorded += 1
                writer.extend(spans)
                writer.flush()
                if options.on_match is not None:
                    options.on_match(result)
    finally:
        for ref in pending:
            ray.cancel(ref)
        writer.close()
    total = already + recorded
    status = "finished" if total >= planned else ("stopped" if stopped else "running")
    if status != "running":
        store.finish_tournament(paths.root, tournament_id, status)
    elapsed = time.perf_counter() - started
    return {"tournament": tournament_id, "planned": planned, "recorded": total, "played_now": recorded,
            "resumed_from": already, "status": status, "stopped_because": stopped, "unavailable": unavailable,
            "seconds": elapsed, "matches_per_minute": recorded / elapsed * 60 if elapsed and recorded else None,
            "leaderboard": store.ratings(paths.root, options.role)}
