"""A run's live display on a terminal, and its JSON lines for machines: both fed the events the
driver reads from the store as the run goes (``aigentflow.run.progress``).

``LiveRun`` keeps the run's state from its events and draws it: the state (with a spinner while the run
works), each step so far, and in BUILDING one progress bar per task (phases done of those planned) under
a bar of tasks merged. ``aigentflow run``/``demo`` show it in a ``rich.live.Live``; a test draws it on a
recording console. ``JsonLines`` writes each event as one line.
"""

from __future__ import annotations

import json
import threading
from typing import IO, Any

from aigentflow.genui.render import MARKS, TASK_STYLES, text

FINAL = {"COMPLETED", "FAILED", "CANCELLED", "PAUSED", "AWAITING_APPROVAL"}
"""States in which a run does no work (the spinner stops)."""


class LiveRun:
    """The run as its events tell it; ``__rich__`` draws it (see the module docstring)."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self.run_id = ""
        self.request = ""
        self.model = ""
        self.state = "CREATED"
        self.reason = ""
        self.steps: dict[tuple[str, int], dict[str, Any]] = {}
        self.tasks: dict[str, dict[str, Any]] = {}
        self.warnings: list[str] = []
        self.bars = Progress(TextColumn("{task.description}"), BarColumn(bar_width=24), MofNCompleteColumn(),
                             TextColumn("{task.fields[phase]}"), auto_refresh=False)
        self._bar_ids: dict[str, Any] = {}
        from rich.spinner import Spinner

        self.lock = threading.Lock()
        self.spinner = Spinner("dots")
        """Kept across frames: a spinner made anew each frame would never turn."""

    def apply(self, event: dict[str, Any]) -> None:
        """Take one event into the state (a live display draws it meanwhile, on its own thread)."""
        with self.lock:
            self._apply(event)

    def _apply(self, event: dict[str, Any]) -> None:
        kind = event["type"]
        if kind == "run.started":
            self.run_id, self.request, self.model, self.state = (event["run_id"], event["request"], event["model"],
                                                                 event["state"])
        elif kind == "run.state_changed":
            self.state, self.reason = event["to_state"], event["reason"] or ""
        elif kind in ("step.started", "step.finished"):
            key = (event["step"], event["attempt"])
            self.steps[key] = {**self.steps.get(key, {}), **event,
                               "status": event.get("status", "started")}
        elif kind == "task.progress":
            self._task(event)
        elif kind == "run.warning":
            self.warnings.append(event["message"])
        elif kind == "run.result":
            self.state = event["state"]

    def _task(self, event: dict[str, Any]) -> None:
        task_id = event["task"]
        self.tasks[task_id] = event
        status = event["status"]
        description = text(f"{task_id} {event['title'][:40]}", TASK_STYLES.get(status, "red"))
        phase = status if status in ("merged", "pending") else event["phase"] if status == "running" \
            else f"stopped: {status}"
        if task_id not in self._bar_ids:
            self._bar_ids[task_id] = self.bars.add_task(description, total=max(event["total"], 1), phase=phase)
        self.bars.update(self._bar_ids[task_id], description=description, completed=event["done"],
                         total=max(event["total"], 1), phase=phase)

    def __rich__(self) -> Any:
        with self.lock:
            return self._draw()

    def _draw(self) -> Any:
        from rich.console import Group
        from rich.tree import Tree

        header = text(f"Run {self.run_id}", "bold")
        header.append("  ")
        header.append(self.state, style="bold cyan")
        if self.reason:
            header.append(f"  ({' '.join(self.reason.split())[:120]})", style="dim")
        self.spinner.update(text=header)
        shown: list[Any] = [header if self.state in FINAL else self.spinner]
        tree = Tree(text("Steps", "bold"), guide_style="dim")
        for step in self.steps.values():
            mark, colour = MARKS.get(step["status"], ("?", ""))
            label = text(f"{mark} {step['step']}", f"bold {colour}")
            label.append(f"  {step['role']}", style="cyan")
            if step["status"] != "started":
                label.append(f"  {step['input_tokens']}/{step['output_tokens']} tokens, ${step['cost_usd']:.4f}",
                             style="dim")
            else:
                label.append("  running", style="yellow")
            tree.add(label)
        if self.steps:
            shown.append(tree)
        if self.tasks:
            merged = sum(1 for t in self.tasks.values() if t["status"] == "merged")
            shown.append(text(f"Tasks: {merged}/{len(self.tasks)} merged", "bold"))
            shown.append(self.bars)
        shown += [text(f"warning: {w}", "yellow") for w in self.warnings[-3:]]
        return Group(*shown)


class JsonLines:
    """Writes each event as one line of compact JSON, flushed at once (a consumer reads it as it comes)."""

    def __init__(self, out: IO[str]) -> None:
        self.out = out

    def __call__(self, event: dict[str, Any]) -> None:
        self.out.write(json.dumps(event, sort_keys=True, separators=(",", ":"), default=str) + "\n")
        self.out.flush()
