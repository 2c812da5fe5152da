"""What a person sees: `aigentflow status RUN` on a terminal (a pseudo-terminal) as a panel with its step
tree, the plan as a tree of tasks and the review findings as a table, text from the run shown as written;
plain text when piped or when the run's platform.genUIOutput flag is off. The live display of a run drawn
from a sequence of real store states (rows written through the store API, read by the driver's
ProgressWatcher), and a tournament's bars, on a recording rich console."""

from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console

from aigentflow.genui.events import parse_event
from aigentflow.genui.live import LiveRun
from aigentflow.genui.render import findings_table, plan_tree, review_findings
from aigentflow.project.paths import ProjectPaths
from aigentflow.run.progress import TASK_PROGRESS, ProgressWatcher
from aigentflow.store.records import StepUsage
from aigentflow.store.sqlite import SQLiteRunStore
from evolution.tournament.progress import MatchBars
from tests.conftest import aigentflow
from tests.genui_runs import COMMENT, PLAN, on_terminal, record_run


def drawn(renderable: object, width: int = 100) -> str:
    console = Console(record=True, width=width, force_terminal=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_status_on_a_terminal_is_a_panel_a_step_tree_a_plan_tree_and_a_findings_table(sample_repo: Path) -> None:
    run_id = record_run(sample_repo)
    code, screen, _ = on_terminal("status", run_id, cwd=sample_repo)
    assert code == 0, screen
    assert f"╭─ Run {run_id}  COMPLETED  model openai/gpt-4o" in screen
    assert "Request: Add due dates [red]now[/red]" in screen, "the request is shown as written, not as markup"
    lines = screen.splitlines()
    for expected in ("✓ plan  project_manager  try 1  1200/300 tokens, $0.0123", "2 tasks, 3.5 hours estimated",
                     "✓ build  backend_developer", "T1: merged, review approve", "T2: merged, review approve, 1 fix",
                     "✓ review  reviewer", "Totals: 6200 tokens in, 1200 out, $0.0623"):
        assert any(expected in line and line.startswith("│") for line in lines), expected  # inside the panel
    history = screen[screen.index("History"):screen.index("Plan: ")].splitlines()
    assert any(line.split()[2:5] == ["PLANNING", "BUILDING", "ADVANCE"] for line in history), "when, from, to, event"
    tree = screen[screen.index("Plan: 2 tasks, 3.5 hours"):]
    assert "├── T1 Due dates in the store  backend, 1.5 h" in tree and "after T1" in tree
    assert "• a bad date is refused" in tree
    assert "Review: T1 approve, T2 approve, feature request_changes" in screen
    row = next(line for line in lines if "src/store.py:30" in line)
    assert "T1" in row and "nit" in row and COMMENT in row, "the last round's comment, brackets as written"
    assert "Refuse bad dates" not in screen, "an earlier round's comment was answered"
    lint = next(line for line in lines if "src/cli.py:7" in line)
    assert "feature" in lint and "lint" in lint and "F401: `os` imported but unused" in lint


def test_status_stays_plain_text_when_piped_or_when_the_flag_is_off(sample_repo: Path) -> None:
    rich_run = record_run(sample_repo)
    piped = aigentflow("status", rich_run, cwd=sample_repo)
    assert piped.returncode == 0 and "╭" not in piped.stdout and "\x1b[" not in piped.stdout
    assert "Transitions" in piped.stdout and "Agents" in piped.stdout and "project_manager: 2 tasks" in piped.stdout
    plain_run = record_run(sample_repo, flags={})
    code, screen, _ = on_terminal("status", plain_run, cwd=sample_repo)
    assert code == 0 and "╭" not in screen and "Transitions" in screen and "project_manager: 2 tasks" in screen


def test_status_on_a_terminal_imports_rich_but_not_pydantic(sample_repo: Path) -> None:
    run_id = record_run(sample_repo)
    code, screen, stderr = on_terminal("status", run_id, cwd=sample_repo,
                                       program=[sys.executable, "-X", "importtime", "-m", "aigentflow"])
    modules = {line.rsplit("|", 1)[-1].strip() for line in stderr.splitlines() if "|" in line}
    assert code == 0 and "╭─ Run" in screen
    assert "rich.console" in modules and "pydantic" not in modules


def test_plan_tree_and_findings_table_wrap_to_the_width_and_keep_text_as_written() -> None:
    text = drawn(plan_tree(PLAN), width=50)
    assert text.splitlines()[0] == "Plan: 2 tasks, 3.5 hours"
    assert "└── T2 An overdue command  backend, 2 h" in text and "after T1" in text
    assert all(len(line) <= 50 for line in text.splitlines())
    report = {"steps": [{"step": "review", "status": "completed", "output": {"lint": {"findings": []}}}]}
    assert review_findings(report) == []
    empty = drawn(findings_table([], {"feature": "approve"}), width=60)
    assert "Review: feature approve" in empty and "no findings" in empty
    marked = drawn(findings_table([{"where": "T9", "severity": "blocker", "location": "a.py:1",
                                    "finding": "[link=x]click[/link]"}], {}), width=80)
    assert "[link=x]click[/link]" in marked and "blocker" in marked


def _progress(store: SQLiteRunStore, run_id: str, task: str, phase: str, done: int, total: int,
              status: str = "running") -> None:
    """What the Orchestrator writes for a build task reaching a phase."""
    store.append_audit(TASK_PROGRESS, run_id, {"task": task, "title": f"task {task}", "phase": phase, "done": done,
                                               "total": total, "status": status})


def test_the_live_display_follows_the_store_step_by_step_and_task_by_task(sample_repo: Path) -> None:
    paths = ProjectPaths(sample_repo)
    store = SQLiteRunStore(paths.database)
    live, seen = LiveRun(), []
    watcher = ProgressWatcher(paths, "", None, on_event=lambda e: (seen.append(e), live.apply(e)))
    try:
        run = store.create_run(project_id=store.get_project()["id"], request="Add due dates", model="replay/demo",
                               settings={}, flags={"platform.genUIOutput": True})
        watcher.run_id = run.id
        run = store.transition(run.id, expected_version=run.version, to_state="BUILDING", return_to=None,
                               event="ADVANCE")
        build = store.begin_step(run.id, "build", "backend_developer", "BUILDING")
        _progress(store, run.id, "T1", "waiting", 0, 4, "pending")
        _progress(store, run.id, "T2", "waiting", 0, 3, "pending")
        watcher.poll()
        first = drawn(live)
        assert f"Run {run.id}  BUILDING" in first and "… build  backend_developer  running" in first
        assert "Tasks: 0/2 merged" in first
        assert any("T1 task T1" in line and "0/4 pending" in line for line in first.splitlines())

        _progress(store, run.id, "T1", "review", 2, 4)
        _progress(store, run.id, "T2", "tests", 0, 3)
        watcher.poll()
        second = drawn(live)
        assert any("T1 task T1" in line and "2/4 review" in line for line in second.splitlines())
        assert any("T2 task T2" in line and "0/3 tests" in line for line in second.splitlines())

        _progress(store, run.id, "T1", "merged", 4, 4, "merged")
        _progress(store, run.id, "T2", "stopped", 1, 3, "failed")
        store.complete_step(build, output={"tasks": {}}, usage=StepUsage(900, 120, 0.01, 2), artifacts=[],
                            expected_version=run.version, to_state="AWAITING_APPROVAL")
        watcher.poll()
        last = drawn(live)
        assert "Run" in last and "AWAITING_APPROVAL" in last and "✓ build  backend_developer  900/120 tokens" in last
        assert "Tasks: 1/2 merged" in last
        assert any("T1 task T1" in line and "4/4 merged" in line for line in last.splitlines())
        assert any("T2 task T2" in line and "1/3 stopped: failed" in line for line in last.splitlines())
    finally:
        store.close()
    types = [e["type"] for e in seen]
    assert types[0] == "run.started" and types.count("task.progress") == 6
    assert types.index("step.started") < types.index("step.finished")
    for event in seen:  # what --json would print: each a valid event
        import json

        parse_event(json.dumps(event))


def test_a_tournament_shows_a_bar_per_match_batch() -> None:
    console = Console(record=True, width=110, force_terminal=True, color_system=None)
    bars = MatchBars(console=console)
    bars.schedule({"1.0.0 vs 1.2.0": {"planned": 4, "recorded": 1}, "1.0.0 vs 1.1.0": {"planned": 2, "recorded": 0}})
    bars.match({"number": 1, "task_id": "py-search", "version_a": "1.2.0", "version_b": "1.0.0", "outcome": "b",
                "score_a": 0.5, "score_b": 1.0})
    console.print(bars.progress)
    text = console.export_text()
    assert "match 2: py-search: 1.2.0 0.50 vs 1.0.0 1.00 -> 1.0.0" in text, "the match's line above the bars"
    pair = next(line for line in text.splitlines() if line.startswith("1.0.0 vs 1.2.0"))
    assert "2/4" in pair and "py-search: 1.0.0" in pair
    other = next(line for line in text.splitlines() if line.startswith("1.0.0 vs 1.1.0"))
    assert "0/2" in other
