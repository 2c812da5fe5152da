"""`aigentflow status` and `aigentflow runs`: read the store only (no Ray, no litellm, no pydantic)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from aigentflow.cli.common import print_json, reports_errors
from aigentflow.cli.plain import echo, style, table

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _store() -> Any:
    from aigentflow.project.paths import locate_project
    from aigentflow.store.sqlite import SQLiteRunStore

    return SQLiteRunStore(locate_project().database, readonly=True)


def _generated(report: dict[str, Any]) -> dict[str, dict[str, str]]:
    from aigentflow.project.paths import locate_project
    from aigentflow.roles.origins import generated_versions

    return generated_versions(locate_project().agents_dir, report["agents"])


def run_report(store: Any, run_id: str) -> dict[str, Any]:
    """Everything `status` shows about one run, as data."""
    run = store.get_run(run_id)
    steps = store.steps(run.id)
    done = [s for s in steps if s.status == "completed"]
    step_dicts = [s.to_dict() for s in steps]
    return {
        "replay": replay_of(run),
        "agents": {role: choice.get("version") for role, choice in sorted((run.settings.get("agents") or {}).items())},
        "metrics": v1_metrics(step_dicts),
        "sandbox": {"filesystem": confinements(step_dicts)},
        "run": {k: v for k, v in run.to_dict().items() if k not in ("settings",)},
        "transitions": [t.to_dict() for t in store.transitions(run.id)],
        "steps": step_dicts,
        "artifacts": [a.to_dict() for a in store.artifacts(run.id)],
        "costs": {"by_model": store.costs("model", run_id=run.id),
                  "all_attempts_usd": round(sum(s.cost_usd for s in steps), 9)},
        "totals": {
            "input_tokens": sum(s.input_tokens for s in done),
            "output_tokens": sum(s.output_tokens for s in done),
            "cost_usd": round(sum(s.cost_usd for s in done), 6),
            "model_calls": run.model_calls,
        },
    }


def confinements(steps: list[dict[str, Any]]) -> list[str]:
    """How the filesystem of the commands the run's agents ran was confined ("bwrap", "unconfined"),
    from each command's record (its ``isolation``) wherever a step stored one."""
    seen: set[str] = set()
    pending: list[Any] = [s.get("output") for s in steps]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            isolation = item.get("isolation")
            if isinstance(isolation, dict) and isinstance(isolation.get("filesystem"), str):
                seen.add(isolation["filesystem"])
            pending += list(item.values())
        elif isinstance(item, list):
            pending += item
    return sorted(seen)


UNCONFINED_NOTICE = ("Agents' commands ran unconfined (build.sandbox_allow_unconfined = true: this machine's "
                     "sandbox could not confine them): they could read your files and write anywhere you can.")


def replay_of(run: Any) -> dict[str, Any] | None:
    """For a replay run: its cassette, and whether it was lenient (answers not matched by prompt)."""
    if not run.model.startswith("replay/"):
        return None
    from aigentflow.models.spec import run_is_lenient

    return {"lenient": run_is_lenient(run.settings), "cassette": run.model.removeprefix("replay/")}


def v1_metrics(steps: list[dict[str, Any]]) -> dict[str, Any]:
    """The rollout plan's v1.0 figures for one run, from its steps: agent success, builds, reviews, coverage."""
    runs = [s for s in steps if s["status"] in ("completed", "failed")]
    agent_ok = sum(1 for s in runs if s["status"] == "completed")
    task_steps, reviews, coverage = [], [], None
    for s in steps:
        output = s.get("output") or {}
        if s["step"] == "build":
            for task in output.get("tasks", {}).values():
                task_steps += [t for t in task.get("steps", []) if t.get("role") != "tester"]
                reviews += task.get("reviews", [])
        if s["step"].split(".")[0] == "test" and output.get("coverage"):  # the last round's
            coverage = output["coverage"]
    builds_ok = sum(1 for t in task_steps if t["status"] == "passed")
    approved = sum(1 for r in reviews if r.get("verdict") == "approve")
    return {
        "agent_success_rate": _rate(agent_ok, len(runs)),
        "build_pass_rate": _rate(builds_ok, len(task_steps)),
        "review_approval_rate": _rate(approved, len(reviews)),
        "coverage_percent": coverage.get("after") if coverage else None,
        "coverage_delta": coverage.get("delta") if coverage else None,
    }


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 3) if whole else None


@reports_errors
def status(
    run_id: Annotated[str | None, typer.Argument(help="Run id or a unique prefix (default: the latest run).")] = None,
    json_out: JsonOption = False,
) -> None:
    """A run's state, transition history, each agent's result, tokens and cost."""
    from aigentflow import emergency
    from aigentflow.exceptions import UnknownRun
    from aigentflow.project.paths import locate_project

    store = _store()
    try:
        switches = emergency.read(store, locate_project().state_dir)
        if run_id is None:
            latest = store.list_runs(limit=1)
            if not latest:
                if not json_out:  # the switches hold for the runs to come: shown before the error
                    for line in emergency.describe(switches, only_on=True):
                        echo(style(line, "yellow"))
                raise UnknownRun("this project has no runs yet; start one with `aigentflow run \"<request>\"`.")
            run_id = latest[0].id
        report = run_report(store, store.resolve_run_id(run_id))
    finally:
        store.close()
    report["emergency_pause_all"] = switches["pause_all"]
    report["emergency"] = switches
    report["generated_agents"] = _generated(report)  # marked as such (the kill switch stops them)
    if json_out:
        print_json(report)
        return
    from aigentflow.genui.render import use_rich

    if use_rich(report["run"]["flags"]):  # a terminal, and the run's platform.genUIOutput flag
        from aigentflow.genui.render import print_report

        print_report(report, result_line, notices(report))
        return
    _print_report(report)


def notices(report: dict[str, Any]) -> list[str]:
    """What `status` says of a run besides its steps, as plain sentences: how a replay was answered,
    generated agents, the emergency switch, withheld variables, unconfined commands, the v1.0 metrics."""
    said = []
    replay = report.get("replay")
    if replay and replay["lenient"]:
        from aigentflow.models.spec import LENIENT_NOTICE

        said.append(f"{LENIENT_NOTICE}.")
    elif replay:
        said.append(replay_line(replay))
    if report.get("generated_agents"):
        said.append("Generated agents: " + ", ".join(f"{role}@{g['version']} ({g['approval'] or 'not approved'})"
                                                     for role, g in report["generated_agents"].items()))
    if report["emergency_pause_all"]:
        said.append("Emergency pause-all is ON: no run moves until `aigentflow admin emergency --resume-all`.")
    said += withheld_lines(report)
    if "unconfined" in (report.get("sandbox") or {}).get("filesystem", []):
        said.append(UNCONFINED_NOTICE)
    if line := metrics_line(report.get("metrics") or {}):
        said.append(line)
    return said


def metrics_line(metrics: dict[str, Any]) -> str:
    """The v1.0 figures in a line ("" when none was measured)."""
    if not any(v is not None for v in metrics.values()):
        return ""

    def pct(value: float | None) -> str:
        return "-" if value is None else f"{100 * value:.0f}%"

    coverage = metrics.get("coverage_percent")
    delta = metrics.get("coverage_delta")
    return (f"v1.0 metrics: agent success {pct(metrics.get('agent_success_rate'))}, build pass "
            f"{pct(metrics.get('build_pass_rate'))}, review approval {pct(metrics.get('review_approval_rate'))}"
            f", coverage {'-' if coverage is None else f'{coverage:g}%'}"
            f"{'' if delta is None else f' ({delta:+g} points)'}")


def equipment_line(output: dict[str, Any]) -> str:
    """The skills a step's agents were given and the MCP tools they called, in one line (or "")."""
    parts = []
    skills = sorted({p["name"] for p in output.get("skills", [])})
    if skills:
        parts.append("skills: " + ", ".join(skills))
    calls = output.get("tool_calls", [])
    if calls:
        refused = sum(1 for c in calls if c.get("refused"))
        failed = sum(1 for c in calls if not c.get("ok") and not c.get("refused"))
        parts.append(f"tools: {len(calls)} call(s), {refused} refused, {failed} failed "
                     f"({', '.join(sorted({c['tool'] for c in calls}))})")
    return "; ".join(parts)


def result_line(step: str, output: dict[str, Any]) -> str:
    """A one-line digest of an agent's result, for people (``test.2``: the second round of ``test``)."""
    step = step.split(".")[0]
    if step == "fix":
        return (f"suite fix attempt {output.get('attempt')}: {output.get('status')}, "
                f"{'merged' if output.get('merged') else 'not merged'}; {str(output.get('detail', ''))[:100]}")
    if step == "analyze":
        return str(output.get("notes", {}).get("summary", ""))[:160]
    if step == "plan":
        tasks = output.get("tasks", [])
        return f"{len(tasks)} tasks, {sum(t.get('estimate_hours', 0) for t in tasks):g} hours estimated"
    if step == "architect":
        decisions = output.get("decisions", [])
        return f"{len(decisions)} decisions: " + "; ".join(d.get("title", "") for d in decisions)[:160]
    if step == "build":
        tasks = output.get("tasks", {})
        merged = sum(1 for t in tasks.values() if t.get("merged"))
        resolved = sum(1 for c in output.get("conflicts", []) if c.get("resolution") == "resolved")
        return (f"{merged}/{len(tasks)} tasks merged into {output.get('feature_branch')}; "
                f"{len(output.get('overlaps', []))} overlapping edits, {resolved} conflicts resolved")
    if step == "test":
        coverage = output.get("coverage") or {}
        results = output.get("results") or {}
        counts = f"{results.get('passed')} passed, {results.get('failed')} failed" if results.get("source") == "junit" \
            else output.get("summary", "")
        cov = f"; coverage {coverage.get('before')}% -> {coverage.get('after')}%" if coverage.get("measured") else ""
        verdict = "ok" if output.get("ok") else "FAILED"
        return f"whole suite on {output.get('feature_branch')}: {verdict} ({counts}){cov}"
    if step == "review":
        lint = output.get("lint") or {}
        return (f"{output.get('verdict')}: {len(lint.get('findings', []))} lint finding(s); tasks "
                + ", ".join(f"{t} {v}" for t, v in sorted((output.get("task_verdicts") or {}).items())))
    if step == "merge":
        merge = output.get("merge", {})
        return (f"{output.get('feature_branch')} -> {output.get('integration_branch')}: {merge.get('kind')} "
                f"{str(merge.get('new', ''))[:10]}")
    return ", ".join(sorted(output))[:160]


def _tasks_table(report: dict[str, Any]) -> str:
    builds = [s for s in report["steps"] if s["step"] == "build" and s["status"] == "completed" and s["output"]]
    if not builds:
        return ""
    rows = []
    for task_id, t in sorted(builds[-1]["output"].get("tasks", {}).items(), key=lambda kv: kv[0]):
        tests = (t.get("tests") or {}).get("summary") or t.get("detail", "")
        tdd = t.get("tdd")
        tdd_text = "-" if not tdd else ("flagged" if tdd.get("violations") else "red->green" if tdd.get(
            "failed_first") else "never red")
        reviews = t.get("reviews") or []
        coverage = (t.get("coverage") or {}).get("changed_percent")
        rows.append([task_id, t["status"], "yes" if t.get("merged") else "no", (t.get("commit") or "-")[:10],
                     tests[:50], tdd_text, str(len(t.get("fix_attempts") or [])),
                     f"{reviews[-1]['verdict']} ({len(reviews)})" if reviews else "-",
                     f"{coverage:g}%" if coverage is not None else "-", "remote" if t.get("remote") else "local"])
    return table(["task", "status", "merged", "commit", "tests", "tdd", "fixes", "review", "coverage", "where"],
                 rows, title="Tasks", flexible=[4])


def withheld_lines(report: dict[str, Any]) -> list[str]:
    """For each task whose tests failed: the user's variables its sandbox did not pass (names only)."""
    builds = [s for s in report["steps"] if s["step"] == "build" and s["output"]]
    lines = []
    for task_id, t in sorted((builds[-1]["output"].get("tasks", {}) if builds else {}).items()):
        tests = t.get("tests") or {}
        if t.get("status") != "passed" and tests.get("env_withheld"):
            names = tests["env_withheld"]
            lines.append(f"{task_id}: its tests ran without {', '.join(names[:8])}"
                         + (f" and {len(names) - 8} more" if len(names) > 8 else "")
                         + " from your environment; pass what they need with build.env_passthrough.")
    return lines


def replay_line(replay: dict[str, Any] | None) -> str:
    """How a replay run's answers were obtained, for people ("" for a real model)."""
    if not replay:
        return ""
    if replay["lenient"]:
        from aigentflow.models.spec import LENIENT_NOTICE

        return style(f"{LENIENT_NOTICE}.", "yellow")
    return (f"Replay: every answer came from cassette {replay['cassette']!r}, recorded for exactly these prompts; "
            "nothing was spent.")


def _print_report(report: dict[str, Any]) -> None:
    run = report["run"]
    echo(f"{style('Run ' + run['id'], 'bold')}  state {style(run['state'], 'bold')}  model {run['model']}")
    if report.get("replay"):
        echo(replay_line(report["replay"]))
    echo(f"Request: {run['request'][:200]}")
    if run["error"]:
        echo(f"{style('Error:', 'red')} {run['error']}")
    if report.get("generated_agents"):
        generated = report["generated_agents"].items()
        echo("Generated agents: " + ", ".join(f"{role}@{g['version']} ({g['approval'] or 'not approved'})"
                                              for role, g in generated))
    from aigentflow import emergency

    for line in emergency.describe(report.get("emergency") or {}, only_on=True):
        echo(style(f"Emergency {line}", "yellow"))
    echo(table(["at", "from", "to", "event", "reason"],
               [[t["at"], t["from_state"] or "", t["to_state"], t["event"], t["reason"] or ""]
                for t in report["transitions"]], title="Transitions", flexible=[4]))
    echo(table(["step", "agent", "try", "status", "tokens in/out", "cost"],
               [[s["step"], s["role"], str(s["attempt"]), s["status"], f"{s['input_tokens']}/{s['output_tokens']}",
                 f"${s['cost_usd']:.4f}"] for s in report["steps"]], title="Agents"))
    for s in report["steps"]:
        if s["status"] == "completed" and s["output"]:
            echo(f"  {style(s['role'], 'bold')}: {result_line(s['step'], s['output'])}")
            extras = equipment_line(s["output"])
            if extras:
                echo(f"    {extras}")
    tasks = _tasks_table(report)
    if tasks:
        echo(tasks)
    for line in withheld_lines(report):
        echo(style(line, "yellow"))
    if "unconfined" in (report.get("sandbox") or {}).get("filesystem", []):
        echo(style(UNCONFINED_NOTICE, "yellow"))
    if line := metrics_line(report.get("metrics") or {}):
        echo(line)
    for s in report["steps"]:
        if s["error"]:
            echo(f"{style(s['step'] + ' (' + s['role'] + ') failed:', 'red')} {s['error']}")
    totals = report["totals"]
    echo(f"Totals: {totals['input_tokens']} tokens in, {totals['output_tokens']} out, "
         f"${totals['cost_usd']:.4f}, {totals['model_calls']} model calls")
    for artifact in report["artifacts"]:
        echo(f"  output: {artifact['path']}")


@reports_errors
def runs(
    limit: Annotated[int, typer.Option(help="How many runs, newest first.")] = 20,
    json_out: JsonOption = False,
) -> None:
    """The project's runs, newest first."""
    store = _store()
    try:
        records = store.list_runs(limit=limit)
        rows = []
        for run in records:
            steps = [s for s in store.steps(run.id) if s.status == "completed"]
            rows.append({
                "id": run.id, "state": run.state, "model": run.model, "created_at": run.created_at,
                "request": run.request, "cost_usd": round(sum(s.cost_usd for s in steps), 6),
                "tokens": sum(s.input_tokens + s.output_tokens for s in steps), "error": run.error,
                "replay": replay_of(run),
            })
    finally:
        store.close()
    if json_out:
        print_json(rows)
        return
    if not rows:
        typer.echo("No runs yet; start one with `aigentflow run \"<request>\"`.")
        return
    echo(table(["run", "state", "created (UTC)", "tokens", "cost", "request"],
               [[row["id"], row["state"] + (" (lenient replay)" if row["replay"] and row["replay"]["lenient"] else ""),
                 row["created_at"][:19].replace("T", " "), str(row["tokens"]), f"${row['cost_usd']:.4f}",
                 row["request"][:80]] for row in rows], flexible=[5]))
