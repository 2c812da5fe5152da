"""A tournament's progress on a terminal: one bar per match batch (a pair of versions), each advanced
as a match of the pair is recorded, with the last result beside it. `tournament run` shows it when
stdout is a terminal and the project's ``platform.genUIOutput`` flag is on; else it prints a line a match."""

from __future__ import annotations

from typing import Any

from evolution.tournament.runner import batch_of


def match_line(match: dict[str, Any]) -> str:
    """A recorded match in a line: its number, task, both scores and the winner."""
    winner = {"a": match["version_a"], "b": match["version_b"]}.get(match["outcome"], "draw")
    return (f"match {match['number'] + 1}: {match['task_id']}: {match['version_a']} {match['score_a']:.2f} vs "
            f"{match['version_b']} {match['score_b']:.2f} -> {winner}")


class MatchBars:
    """The bars (a ``rich.progress.Progress``: ``with bars.progress:`` shows them live)."""

    def __init__(self, console: Any = None) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.progress = Progress(TextColumn("{task.description}"), BarColumn(bar_width=30), MofNCompleteColumn(),
                                 TextColumn("{task.fields[last]}"), TimeElapsedColumn(), console=console)
        self.bars: dict[str, Any] = {}

    def schedule(self, batches: dict[str, dict[str, int]]) -> None:
        """A bar for each batch: its planned matches, those recorded before (a resumed tournament) done."""
        for batch, counts in sorted(batches.items()):
            self.bars[batch] = self.progress.add_task(batch, total=counts["planned"], completed=counts["recorded"],
                                                      last="")

    def match(self, match: dict[str, Any]) -> None:
        """A match was recorded: its batch's bar advances, showing where the match was played and who won."""
        batch = batch_of(match["version_a"], match["version_b"])
        if batch not in self.bars:
            self.bars[batch] = self.progress.add_task(batch, total=None, last="")
        winner = {"a": match["version_a"], "b": match["version_b"]}.get(match["outcome"], "draw")
        self.progress.update(self.bars[batch], advance=1, last=f"{match['task_id']}: {winner}")
        self.progress.console.print(match_line(match), markup=False, highlight=False)
