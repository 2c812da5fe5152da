"""Runbooks: Markdown files with front matter naming the rules they serve and numbered steps; a step
holding an ```aigentflow fence is executable (each line of the fence one aigentflow command, without the
leading ``aigentflow``; ``{incident}``, ``{rule}``, ``{tenant}`` are filled in).

Shipped ones are in ``runbooks/`` beside this file; a project's in ``.aigentflow/runbooks/*.md`` come first
(one serving the same rule wins). A file that does not parse is a ``RunbookError`` naming it and the line."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from aigentflow.exceptions import UsageError

SHIPPED = Path(__file__).parent / "runbooks"
_STEP = re.compile(r"^(\d+)\.\s+(.*)$")
_FENCE = re.compile(r"^\s*```\s*([\w-]*)\s*$")


class RunbookError(UsageError):
    """A runbook that cannot be read: which file, which line, what to write."""


@dataclass(frozen=True)
class Step:
    number: int
    text: str
    commands: tuple[tuple[str, ...], ...]
    """Each an aigentflow command's arguments; empty for a step a person does."""

    @property
    def executable(self) -> bool:
        return bool(self.commands)


@dataclass(frozen=True)
class Runbook:
    id: str
    title: str
    rules: tuple[str, ...]
    steps: tuple[Step, ...]
    path: Path
    text: str


def parse(path: Path) -> Runbook:
    where = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RunbookError(f"cannot read runbook {where}: {exc}") from None
    lines = text.splitlines()
    if not lines or lines[0].strip() != "---":
        raise RunbookError(f"{where}: a runbook starts with front matter: a line `---`, then `rules: rule-id, ...`, "
                           "then `---`")
    try:
        end = next(i for i, line in enumerate(lines[1:], start=1) if line.strip() == "---")
    except StopIteration:
        raise RunbookError(f"{where}: the front matter is not closed by a `---` line") from None
    meta: dict[str, str] = {}
    for number, line in enumerate(lines[1:end], start=2):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, colon, value = line.partition(":")
        if not colon or not key.strip().isidentifier():
            raise RunbookError(f"{where}:{number}: front matter lines are `key: value`, got {line.strip()!r}")
        meta[key.strip()] = value.strip()
    rules = tuple(r for r in re.split(r"[\s,]+", meta.get("rules", "").strip("[]")) if r)
    if not rules:
        raise RunbookError(f"{where}: the front matter needs `rules:` naming the rule ids this runbook serves")
    steps = _steps(lines, end + 1, where)
    if not steps:
        raise RunbookError(f"{where}: no steps; write them as a numbered list (`1. ...`, `2. ...`)")
    title = meta.get("title") or next((line.lstrip("# ").strip() for line in lines[end + 1:] if line.startswith("#")),
                                      path.stem)
    return Runbook(meta.get("id") or path.stem, title, rules, tuple(steps), path, text)


def _steps(lines: list[str], start: int, where: str) -> list[Step]:
    steps: list[Step] = []
    current: list[str] = []
    commands: list[tuple[str, ...]] = []
    fence: str | None = None
    fence_line = 0

    def close() -> None:
        if steps or current:
            number = len(steps) + 1
            steps.append(Step(number, "\n".join(current).strip(), tuple(commands)))

    for index in range(start, len(lines)):
        line, number = lines[index], index + 1
        fenced = _FENCE.match(line)
        if fence is not None:
            if fenced and not fenced.group(1):
                fence = None
            elif fence == "aigentflow" and line.strip() and not line.strip().startswith("#"):
                words = _words(line.strip(), where, number)
                if not current:
                    raise RunbookError(f"{where}:{number}: an ```aigentflow block must sit inside a numbered step")
                commands.append(tuple(words))
            current.append(line)
            continue
        if fenced:
            fence, fence_line = fenced.group(1) or "text", number
            if fence == "aigentflow" and not current:
                raise RunbookError(f"{where}:{number}: an ```aigentflow block must sit inside a numbered step")
            current.append(line)
            continue
        step = _STEP.match(line)
        if step:
            if current:
                close()
                current, commands = [], []
            if int(step.group(1)) != len(steps) + 1:
                raise RunbookError(f"{where}:{number}: step {step.group(1)} should be step {len(steps) + 1} "
                                   "(number the steps 1, 2, 3, ...)")
            current = [step.group(2)]
        elif current and line.startswith("#"):
            close()
            current, commands = [], []
        elif current:
            current.append(line)
    if fence is not None:
        raise RunbookError(f"{where}:{fence_line}: the ``` block opened here is never closed")
    if current:
        close()
    for step in steps:
        if any(not command for command in step.commands):
            raise RunbookError(f"{where}: step {step.number} has an empty aigentflow command")
    return steps


def _words(line: str, where: str, number: int) -> list[str]:
    try:
        words = shlex.split(line)
    except ValueError as exc:
        raise RunbookError(f"{where}:{number}: cannot read the command {line!r}: {exc}") from None
    if words and words[0] == "aigentflow":
        words = words[1:]
    if not words:
        raise RunbookError(f"{where}:{number}: an empty aigentflow command")
    return words


def runbooks(state_dir: Path | None) -> list[Runbook]:
    """The project's runbooks, then the shipped ones (every file parsed: a broken one is an error)."""
    found: list[Runbook] = []
    folders = ([Path(state_dir) / "runbooks"] if state_dir else []) + [SHIPPED]
    for folder in folders:
        if folder.is_dir():
            found += [parse(path) for path in sorted(folder.glob("*.md"))]
    return found


def for_rule(state_dir: Path | None, rule: str) -> Runbook | None:
    return next((book for book in runbooks(state_dir) if rule in book.rules), None)


def by_id(state_dir: Path | None, runbook_id: str) -> Runbook | None:
    return next((book for book in runbooks(state_dir) if book.id == runbook_id), None)


def filled(command: tuple[str, ...], values: dict[str, str]) -> list[str]:
    """The command with ``{incident}``, ``{rule}``, ``{tenant}`` replaced (other braces left as they are)."""
    out = []
    for word in command:
        text = word
        for name, value in values.items():
            text = text.replace("{" + name + "}", value)
        out.append(text)
    return out
