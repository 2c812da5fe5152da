"""Command results drawn with rich for a terminal: a run as a panel with its steps as a tree, the plan
as a tree of tasks, the build's tasks and the review findings as tables.

Everything here takes the plain dicts the commands build (``status --json``'s report), never pydantic
models: `status` on a terminal imports rich (about 40 ms) but still not pydantic. Text from runs
(requests, summaries, review comments) is printed as given, never read as rich markup. Plain output
(a pipe, CI, ``NO_COLOR``) stays ``aigentflow.cli.plain``'s; ``use_rich`` decides.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

Digest = Callable[[str, dict[str, Any]], str]
"""``(step, output) -> one line``: what a step's result says, for people (``status_cmd.result_line``)."""

MARKS = {"completed": ("✓", "green"), "failed": ("✗", "red"), "started": ("…", "yellow")}
TASK_STYLES = {"merged": "green", "passed": "green", "running": "yellow", "pending": "dim"}


def use_rich(flags: dict[str, Any] | None = None) -> bool:
    """Rich output: stdout is a terminal, colour is not refused (``NO_COLOR``, ``TERM=dumb``) and the
    ``platform.genUIOutput`` flag is on in ``flags`` (a run's recorded flags; None: not asked)."""
    if not sys.stdout.isatty() or os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    return flags is None or bool(flags.get("platform.genUIOutput", False))


def text(value: Any, style: str = "") -> Any:
    """``value`` as rich Text: shown exactly as written (brackets included)."""
    from rich.text import Text

    return Text(" ".join(str(value).split()), style=style)


def _tokens(step: dict[str, Any]) -> str:
    return f"{step['input_tokens']}/{step['output_tokens']} tokens, ${step['cost_usd']:.4f}"


def steps_tree(report: dict[str, Any], digest: Digest) -> Any:
    """The run's steps as a tree: each attempt with its mark, agent, tokens and cost; under it the
    result's digest (and, for the build, each task) or the error."""
    from rich.tree import Tree

    tree = Tree(text("Steps", "bold"), guide_style="dim")
    for step in report["steps"]:
        mark, colour = MARKS.get(step["status"], ("?", ""))
        label = text(f"{mark} {step['step']}", f"bold {colour}")
        label.append(f"  {step['role']}", style="cyan")
        label.append(f"  try {step['attempt']}  {_tokens(step)}", style="dim")
        node = tree.add(label)
        if step["error"]:
            node.add(text(step["error"], "red"))
        elif step["status"] == "completed" and step["output"]:
            node.add(text(digest(step["step"], step["output"])))
            if step["step"] == "build":
                for task_id, task in sorted(step["output"].get("tasks", {}).items()):
                    state = "merged" if task.get("merged") else task.get("status", "")
                    reviews = task.get("reviews") or []
                    verdict = f", review {reviews[-1]['verdict']}" if reviews else ""
                    fixes = len(task.get("fix_attempts") or [])
                    node.add(text(f"{task_id}: {state}{verdict}" + (f", {fixes} fix attempt(s)" if fixes else ""),
                                  TASK_STYLES.get(state, "red")))
    return tree


def plan_tree(plan: dict[str, Any]) -> Any:
    """The work breakdown (the plan step's output) as a tree: each task with its type and estimate, its
    dependencies and acceptance criteria under it."""
    from rich.tree import Tree

    tasks = plan.get("tasks", [])
    hours = sum(t.get("estimate_hours", 0) for t in tasks)
    tree = Tree(text(f"Plan: {len(tasks)} tasks, {hours:g} hours", "bold"), guide_style="dim")
    for task in tasks:
        label = text(f"{task['id']} {task['title']}", "bold")
        label.append(f"  {task['type']}, {task['estimate_hours']:g} h", style="dim")
        node = tree.add(label)
        if task.get("depends_on"):
            node.add(text("after " + ", ".join(task["depends_on"]), "yellow"))
        for criterion in task.get("acceptance_criteria", []):
            node.add(text(f"• {criterion}"))
    return tree


def history_table(transitions: list[dict[str, Any]]) -> Any:
    """The run's transitions: when, from, to, why."""
    from rich import box
    from rich.table import Table

    table = Table(title="History", title_justify="left", title_style="bold", box=box.SIMPLE_HEAD)
    for header in ("at (UTC)", "from", "to", "event", "reason"):
        table.add_column(header, overflow="fold")
    for move in transitions:
        table.add_row(text(move["at"][:19].replace("T", " "), "dim"), text(move["from_state"] or "-"),
                      text(move["to_state"], "bold"), text(move["event"]), text(move["reason"] or ""))
    return table


def review_findings(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Every review finding of the run: each task's last review round's comments, then the feature
    review's lint findings; each {where, severity, location, finding}."""
    found: list[dict[str, Any]] = []
    steps = [s for s in report["steps"] if s["status"] == "completed" and s["output"]]
    for step in [s for s in steps if s["step"] == "build"][-1:]:
        for task_id, task in sorted(step["output"].get("tasks", {}).items()):
            for comment in ((task.get("reviews") or [{}])[-1]).get("comments", []):
                found.append({"where": task_id, "severity": comment.get("severity", "minor"),
                              "location": f"{comment['path']}:{comment['line']}", "finding": comment["body"]})
    for step in [s for s in steps if s["step"].split(".")[0] == "review"][-1:]:
        for finding in (step["output"].get("lint") or {}).get("findings", []):
            found.append({"where": "feature", "severity": "lint", "location": f"{finding['path']}:{finding['line']}",
                          "finding": f"{finding['code']}: {finding['message']}"})
    return found


SEVERITY_STYLES = {"blocker": "bold red", "major": "red", "minor": "yellow", "nit": "dim", "lint": "magenta"}


def findings_table(findings: list[dict[str, Any]], verdicts: dict[str, str]) -> Any:
    """The review findings as a table, titled with the verdicts (every task's, and the feature's)."""
    from rich.table import Table

    title = "Review: " + ", ".join(f"{where} {verdict}" for where, verdict in verdicts.items())
    table = Table(title=title, title_justify="left", title_style="bold", expand=False)
    for header in ("where", "severity", "location", "finding"):
        table.add_column(header, overflow="fold")
    for row in findings:
        table.add_row(text(row["where"]), text(row["severity"], SEVERITY_STYLES.get(row["severity"], "")),
                      text(row["location"]), text(row["finding"]))
    if not findings:
        table.add_row("", "", "", text("no findings", "green"))
    return table


def _verdicts(report: dict[str, Any]) -> dict[str, str]:
    verdicts: dict[str, str] = {}
    for step in report["steps"]:
        output = step["output"] or {}
        if step["status"] == "completed" and step["step"].split(".")[0] == "review":
            verdicts = {**output.get("task_verdicts", {}), "feature": output.get("verdict", "")}
    return verdicts


def report_renderables(report: dict[str, Any], digest: Digest, notices: Sequence[str] = ()) -> list[Any]:
    """What `status RUN` shows on a terminal: the run's panel (its request, the notices, the step tree,
    totals), the plan's tree, the review findings."""
    from rich.console import Group
    from rich.panel import Panel

    run = report["run"]
    colour = {"COMPLETED": "green", "FAILED": "red", "AWAITING_APPROVAL": "yellow", "PAUSED": "yellow"}.get(
        run["state"], "cyan")
    head = text(f"Run {run['id']}", "bold")
    head.append("  ")
    head.append(run["state"], style=f"bold {colour}")
    head.append(f"  model {run['model']}", style="dim")
    totals = report["totals"]
    body = [text(f"Request: {run['request'][:300]}"), *(text(n, "yellow") for n in notices)]
    if run["error"]:
        body.append(text(f"Error: {run['error']}", "red"))
    body += [steps_tree(report, digest),
             text(f"Totals: {totals['input_tokens']} tokens in, {totals['output_tokens']} out, "
                  f"${totals['cost_usd']:.4f}, {totals['model_calls']} model calls", "bold")]
    body += [text(f"output: {a['path']}", "dim") for a in report["artifacts"]]
    shown: list[Any] = [Panel(Group(*body), title=head, title_align="left", border_style=colour),
                        history_table(report["transitions"])]
    plans = [s for s in report["steps"] if s["step"] == "plan" and s["status"] == "completed" and s["output"]]
    if plans:
        shown.append(plan_tree(plans[-1]["output"]))
    verdicts = _verdicts(report)
    findings = review_findings(report)
    if verdicts or findings:
        shown.append(findings_table(findings, verdicts))
    return shown


def print_report(report: dict[str, Any], digest: Digest, notices: Sequence[str] = (), console: Any = None) -> None:
    """Print ``report_renderables`` to ``console`` (default: stdout's)."""
    if console is None:
        from rich.console import Console

        console = Console(highlight=False)
    for item in report_renderables(report, digest, notices):
        console.print(item)
