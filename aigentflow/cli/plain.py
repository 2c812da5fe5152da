"""Plain-text output for the read-only commands (`status`, `runs`): aligned tables and a little
colour on a terminal, without rich (importing and rendering rich costs `status` about 80 ms of its
start-up budget). Text is printed as given: a request with brackets in it is never read as markup."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Sequence

STYLES = {"bold": "1", "red": "31", "yellow": "33"}


def style(text: str, name: str) -> str:
    """``text`` in a style when stdout is a terminal (and NO_COLOR is unset), else as it is."""
    if not sys.stdout.isatty() or os.environ.get("NO_COLOR"):
        return text
    return f"\033[{STYLES[name]}m{text}\033[0m"


def width() -> int:
    """The terminal's width; 100 columns when the output is not a terminal."""
    return shutil.get_terminal_size(fallback=(100, 24)).columns if sys.stdout.isatty() else 100


def _fit(widths: list[int], room: int, first: Sequence[int] = (), floor: int = 6) -> list[int]:
    """Narrow columns, one character at a time, until the row fits in ``room``: the ``first``
    columns (free text) down to 12 characters, then the widest."""
    widths = list(widths)
    gaps = 2 * (len(widths) - 1)
    while sum(widths) + gaps > room:
        candidates = [i for i in first if widths[i] > 12] or range(len(widths))
        widest = max(candidates, key=lambda i: widths[i])
        if widths[widest] <= floor:
            break
        widths[widest] -= 1
    return widths


def _cell(text: str, size: int) -> str:
    text = " ".join(text.split())  # one line per row
    return text if len(text) <= size else text[: max(size - 1, 0)] + "…"


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], title: str = "",
          flexible: Sequence[int] = ()) -> str:
    """An aligned table: a title, a header row, a rule, the rows. Wider than the terminal, columns are
    cut (ending in "…"): the ``flexible`` ones (free text) first, then the widest."""
    cells = [[" ".join(str(c).split()) for c in row] for row in rows]
    natural = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    widths = _fit(natural, width(), flexible)

    def line(values: Sequence[str]) -> str:
        return "  ".join(_cell(v, w).ljust(w) for v, w in zip(values, widths, strict=True)).rstrip()

    out = [style(title, "bold")] if title else []
    out += [line(headers), "  ".join("-" * w for w in widths)]
    out += [line(r) for r in cells]
    return "\n".join(out)


def echo(text: str = "") -> None:
    sys.stdout.write(text + "\n")
