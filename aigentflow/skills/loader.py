"""Reading skill folders: one ``SKILL.md`` parsed and checked, and every skill found in its places.

A skill folder is read without following anything out of it: ``SKILL.md`` and every file listed
under ``scripts/`` and ``references/`` must stay inside the folder (a symlink to elsewhere is an
error), ``SKILL.md`` must be a regular UTF-8 file of at most 256 KB, and only its front matter is
parsed as YAML (the safe loader: plain data, no Python objects). Files under ``scripts/`` and
``references/`` are listed by name, never read.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SKILL_FILE = "SKILL.md"
MAX_SKILL_FILE_BYTES = 256 * 1024
MAX_NAME_CHARS = 64
MAX_DESCRIPTION_CHARS = 1024
MAX_COMPATIBILITY_CHARS = 500
MAX_LISTED_FILES = 200
"""Most files listed per sub-folder (``scripts/``, ``references/``); more are left out with a warning."""

BUILTIN_DIR = Path(__file__).resolve().parent / "builtin"
"""The packs shipped with aigentflow."""

SOURCES = ("project", "user", "built-in")
"""Where skills come from, highest precedence first."""

KNOWN_KEYS = frozenset({"name", "description", "allowed-tools", "license", "compatibility", "metadata"})
FILE_FOLDERS = ("scripts", "references")

_NAME = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
# Whitespace or commas outside parentheses: "Read Grep", "Read, Grep" and "Bash(git add:*) Read".
_TOOL_SEPARATOR = re.compile(r"[\s,]")


@dataclass(frozen=True)
class Skill:
    """One valid skill: its front matter, its instructions, and where it was found."""

    name: str
    description: str
    body: str
    """The Markdown instructions after the front matter."""
    path: Path
    """The skill's folder."""
    source: str
    """``project``, ``user`` or ``built-in``."""
    allowed_tools: tuple[str, ...] = ()
    license: str | None = None
    metadata: dict[str, str] = field(default_factory=dict, hash=False)
    scripts: tuple[str, ...] = ()
    """Files under ``scripts/``, relative to the skill folder (``scripts/check.py``)."""
    references: tuple[str, ...] = ()
    """Files under ``references/``, relative to the skill folder (``references/checklist.md``)."""
    warnings: tuple[str, ...] = ()
    """What is odd but allowed: unknown front-matter keys, an empty body, values converted to text."""
    compatibility: str | None = None

    @property
    def file(self) -> Path:
        return self.path / SKILL_FILE

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "description": self.description, "source": self.source,
            "path": _display(self.path), "file": _display(self.file), "allowed_tools": list(self.allowed_tools),
            "license": self.license, "compatibility": self.compatibility, "metadata": dict(self.metadata),
            "scripts": list(self.scripts), "references": list(self.references), "warnings": list(self.warnings),
            "body": self.body,
        }


class SkillError(Exception):
    """A skill that cannot be used: ``path`` is the file at fault, ``problem`` says what and what to do."""

    def __init__(self, path: Path | str, problem: str) -> None:
        self.path = _display(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


@dataclass(frozen=True)
class SkillProblem:
    """A malformed skill, skipped by discovery: the file at fault and what is wrong with it."""

    path: str
    problem: str

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


@dataclass
class SkillCatalog:
    """Every skill found: the winner of each name, the lower-precedence copies, and the malformed ones."""

    skills: dict[str, Skill] = field(default_factory=dict)
    shadowed: list[Skill] = field(default_factory=list)
    problems: list[SkillProblem] = field(default_factory=list)

    def shadowed_by(self, skill: Skill) -> Skill | None:
        """The skill that hides ``skill``, or None when ``skill`` is the winner of its name."""
        winner = self.skills.get(skill.name)
        return None if winner is None or winner is skill else winner


def _display(path: Path | str) -> str:
    """A path as printable text: bytes that are not UTF-8 in a file name are shown escaped."""
    return str(path).encode("utf-8", "backslashreplace").decode("utf-8")


def _inside(target: Path, folder: Path) -> bool:
    return target == folder or folder in target.parents


def parse_skill(folder: Path, source: str) -> Skill:
    """The skill in ``folder``, checked; raises ``SkillError`` naming the file and the problem.

    ``source`` is recorded on the skill (``project``, ``user`` or ``built-in``). Unknown front-matter
    keys, an empty body and metadata values that had to be converted to text are warnings, not errors.
    """
    folder = Path(folder)
    skill_file = folder / SKILL_FILE
    if not folder.is_dir():
        problem = "does not exist" if not folder.exists() else "is not a directory"
        raise SkillError(folder, f"{problem}; a skill is a folder holding a {SKILL_FILE}")
    real_folder = folder.resolve()
    text = _read_skill_file(skill_file, real_folder)
    front, body, body_line = _split_front_matter(skill_file, text)
    data = _load_yaml(skill_file, front)
    warnings: list[str] = []

    name = _required_text(skill_file, data, "name")
    _check_name(skill_file, name, folder.name)
    description = _required_text(skill_file, data, "description").strip()
    if len(description) > MAX_DESCRIPTION_CHARS:
        raise SkillError(skill_file, f"description is {len(description)} characters long; the limit is "
                                     f"{MAX_DESCRIPTION_CHARS}: say what the skill does and when to use it, and "
                                     "move the details into the body")
    allowed_tools = _allowed_tools(skill_file, data.get("allowed-tools"))
    license_ = _optional_text(skill_file, data, "license")
    compatibility = _optional_text(skill_file, data, "compatibility")
    if compatibility is not None and len(compatibility) > MAX_COMPATIBILITY_CHARS:
        raise SkillError(skill_file, f"compatibility is {len(compatibility)} characters long; the limit is "
                                     f"{MAX_COMPATIBILITY_CHARS}")
    metadata = _metadata(skill_file, data.get("metadata"), warnings)
    for key in data:
        if key not in KNOWN_KEYS:
            warnings.append(f"unknown front-matter key {key!r} is ignored (known: {', '.join(sorted(KNOWN_KEYS))})")
    if not body.strip():
        warnings.append(f"has no instructions after the front matter (line {body_line} on is empty)")
    scripts = _list_files(folder, real_folder, "scripts", warnings)
    references = _list_files(folder, real_folder, "references", warnings)
    return Skill(name=name, description=description, body=body.strip("\n"), path=folder, source=source,
                 allowed_tools=allowed_tools, license=license_, metadata=metadata, scripts=scripts,
                 references=references, warnings=tuple(warnings), compatibility=compatibility)


def _read_skill_file(skill_file: Path, real_folder: Path) -> str:
    """The text of ``SKILL.md``: a regular UTF-8 file inside the folder, at most 256 KB."""
    if not skill_file.exists() and not skill_file.is_symlink():
        others = [p.name for p in skill_file.parent.iterdir() if p.name.lower() == SKILL_FILE.lower()]
        hint = f"rename {others[0]} to {SKILL_FILE}" if others else \
            f"add a {SKILL_FILE} with name and description front matter"
        raise SkillError(skill_file, f"missing: every skill folder needs a {SKILL_FILE}; {hint}")
    if skill_file.is_symlink():
        target = skill_file.resolve()
        if not _inside(target, real_folder):
            raise SkillError(skill_file, f"is a symlink to {_display(target)}, outside the skill folder; "
                                         "put the file itself in the folder")
    try:
        info = skill_file.stat()
    except OSError as exc:
        raise SkillError(skill_file, f"cannot be read: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        raise SkillError(skill_file, "is not a regular file")
    try:
        with skill_file.open("rb") as handle:
            data = handle.read(MAX_SKILL_FILE_BYTES + 1)
    except OSError as exc:
        raise SkillError(skill_file, f"cannot be read: {exc.strerror or exc}") from None
    if len(data) > MAX_SKILL_FILE_BYTES:
        raise SkillError(skill_file, f"is larger than {MAX_SKILL_FILE_BYTES // 1024} KB; keep the instructions "
                                     "short and move long material into references/")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[:exc.start].count(b"\n") + 1
        raise SkillError(skill_file, f"is not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line}); "
                                     "save it as UTF-8") from None
    return text.removeprefix("\ufeff")


def _split_front_matter(skill_file: Path, text: str) -> tuple[str, str, int]:
    """(front matter YAML, body, the body's first line number) of a ``SKILL.md``."""
    lines = text.split("\n")
    if not lines or lines[0].rstrip() != "---":
        raise SkillError(skill_file, "has no front matter: the file must start with a line `---`, then YAML with "
                                     "name and description, then a line `---`, then the instructions")
    for index, line in enumerate(lines[1:], start=1):
        if line.rstrip() == "---":
            front = "\n".join(lines[1:index])
            body = "\n".join(lines[index + 1:]).replace("\r\n", "\n")
            return front, body, index + 2
    raise SkillError(skill_file, "front matter is not closed: add a line `---` after the YAML (line 1 opens it)")


def _load_yaml(skill_file: Path, front: str) -> dict[Any, Any]:
    import yaml

    try:
        data = yaml.safe_load(front)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" (line {mark.line + 2})" if mark is not None else ""  # +1: the opening `---`, +1: 1-based
        what = ": ".join(part for part in (exc.context, exc.problem) if part)
        if "mapping values are not allowed" in what:
            hint = "quote a value that contains ': ' (description: \"Use when: ...\")"
        elif "\\t" in what:
            hint = "indent with spaces, not tabs"
        else:
            hint = "check the YAML syntax there (quote values that start with a special character)"
        raise SkillError(skill_file, f"front matter is not valid YAML{where}: {what}; {hint}") from None
    except yaml.YAMLError as exc:
        raise SkillError(skill_file, f"front matter is not valid YAML: {exc}") from None
    if data is None:
        raise SkillError(skill_file, "front matter is empty: it needs at least name and description")
    if not isinstance(data, dict):
        raise SkillError(skill_file, f"front matter must be a mapping of keys to values (name: ..., "
                                     f"description: ...), not a {_yaml_type(data)}")
    return data


def _yaml_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    return {str: "string", int: "number", float: "number", list: "list", dict: "mapping"}.get(
        type(value), type(value).__name__)


def _required_text(skill_file: Path, data: dict[Any, Any], key: str) -> str:
    if key not in data or data[key] is None:
        hint = {"name": "the skill's folder name", "description": "what the skill does and when to use it"}[key]
        raise SkillError(skill_file, f"front matter has no {key}: add `{key}: <{hint}>`")
    value = data[key]
    if not isinstance(value, str):
        raise SkillError(skill_file, f"{key} must be a string, not a {_yaml_type(value)}")
    if not value.strip():
        raise SkillError(skill_file, f"{key} is empty")
    return value


def _optional_text(skill_file: Path, data: dict[Any, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise SkillError(skill_file, f"{key} must be a string, not a {_yaml_type(value)}")
    return value.strip()


def _check_name(skill_file: Path, name: str, folder_name: str) -> None:
    rule = (f"use 1-{MAX_NAME_CHARS} lowercase letters, digits and hyphens, with no hyphen at the start or end "
            "and no two in a row")
    if len(name) > MAX_NAME_CHARS:
        raise SkillError(skill_file, f"name is {len(name)} characters long; {rule}")
    if not _NAME.match(name):
        why = "has uppercase letters" if name.lower() != name and _NAME.match(name.lower()) else "is not valid"
        raise SkillError(skill_file, f"name {name!r} {why}: {rule}")
    if name != folder_name:
        raise SkillError(skill_file, f"name {name!r} does not match its folder '{_display(folder_name)}': "
                                     "rename the folder or the skill so that they are the same")


def _allowed_tools(skill_file: Path, value: Any) -> tuple[str, ...]:
    """``allowed-tools`` as a tuple: a space-delimited string (commas tolerated) or a list of strings."""
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(_split_tools(value))
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(item.strip() for item in value if item.strip())
    raise SkillError(skill_file, f"allowed-tools must be a space-delimited string or a list of strings, not "
                                 f"a {_yaml_type(value)}")


def _split_tools(text: str) -> list[str]:
    """Split on spaces and commas, but not inside parentheses: ``Bash(git add:*)`` is one tool."""
    tools, current, depth = [], [], 0
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")" and depth:
            depth -= 1
        if depth == 0 and _TOOL_SEPARATOR.fullmatch(char):
            if current:
                tools.append("".join(current))
                current = []
        else:
            current.append(char)
    if current:
        tools.append("".join(current))
    return tools


def _metadata(skill_file: Path, value: Any, warnings: list[str]) -> dict[str, str]:
    """``metadata`` as text to text; numbers, booleans and dates are converted with a warning."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise SkillError(skill_file, f"metadata must be a mapping of names to strings, not a {_yaml_type(value)}")
    metadata: dict[str, str] = {}
    for key, item in value.items():
        if not isinstance(key, str):
            warnings.append(f"metadata key {key!r} is not a string; read as {str(key)!r}")
        if isinstance(item, str):
            metadata[str(key)] = item
        elif item is None or isinstance(item, (list, dict)):
            raise SkillError(skill_file, f"metadata value of {key!r} must be a string, not "
                                         f"{'empty' if item is None else 'a ' + _yaml_type(item)}")
        else:
            text = ("true" if item else "false") if isinstance(item, bool) else str(item)
            warnings.append(f"metadata value of {key!r} is a {_yaml_type(item)}; read as the string {text!r} "
                            "(quote it to say so)")
            metadata[str(key)] = text
    return metadata


def _list_files(folder: Path, real_folder: Path, sub: str, warnings: list[str]) -> tuple[str, ...]:
    """The files under ``folder/sub``, relative to ``folder``, sorted; symlinks out of the folder are errors."""
    top = folder / sub
    if top.is_symlink() and not _inside(top.resolve(), real_folder):
        raise SkillError(top, f"is a symlink to {_display(top.resolve())}, outside the skill folder; "
                              "put the files themselves in the folder")
    if not top.exists():
        return ()
    if not top.is_dir():
        warnings.append(f"{sub} is a file, not a folder; it is ignored")
        return ()
    found: list[str] = []
    errors: list[OSError] = []
    for dirpath, dirnames, filenames in os.walk(top, onerror=errors.append):
        base = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "__pycache__")
        for name in list(dirnames):
            entry = base / name
            if entry.is_symlink():  # a symlinked directory: checked, never walked (no loops)
                dirnames.remove(name)
                _check_link(entry, real_folder, folder, warnings)
        for name in sorted(filenames):
            entry = base / name
            if name.startswith("."):
                continue
            if entry.is_symlink() and not _check_link(entry, real_folder, folder, warnings):
                continue
            relative = entry.relative_to(folder).as_posix()
            if relative != _display(relative):
                warnings.append(f"{_display(relative)}: the file name is not UTF-8; it is not listed")
                continue
            found.append(relative)
    for exc in errors:
        warnings.append(f"{_display(exc.filename or top)}: cannot be listed ({exc.strerror or exc})")
    found.sort()
    if len(found) > MAX_LISTED_FILES:
        warnings.append(f"{sub}/ has {len(found)} files; only the first {MAX_LISTED_FILES} are listed")
        found = found[:MAX_LISTED_FILES]
    return tuple(found)


def _check_link(entry: Path, real_folder: Path, folder: Path, warnings: list[str]) -> bool:
    """Whether the symlink ``entry`` is a usable file: raises if it leads out of the skill folder."""
    target = entry.resolve()
    if not _inside(target, real_folder):
        raise SkillError(entry, f"is a symlink to {_display(target)}, outside the skill folder; put the file "
                                "itself in the folder")
    if not target.exists():
        warnings.append(f"{_display(entry.relative_to(folder).as_posix())} is a broken symlink; it is not listed")
        return False
    return target.is_file()


def skill_dirs(project_root: Path | None = None, user_dir: Path | None = None) -> list[tuple[str, Path]]:
    """Where skills are looked for, lowest precedence first: (source, directory of skill folders)."""
    from aigentflow.project.paths import STATE_DIRNAME, user_config_dir

    dirs = [("built-in", BUILTIN_DIR),
            ("user", Path(user_dir) if user_dir is not None else user_config_dir() / "skills")]
    if project_root is not None:
        dirs.append(("project", Path(project_root) / STATE_DIRNAME / "skills"))
    return dirs


def discover(project_root: Path | None = None, user_dir: Path | None = None) -> SkillCatalog:
    """Every skill of the built-in packs, the user's and the project's, with project > user > built-in.

    Each sub-folder of ``<project_root>/.aigentflow/skills``, ``user_dir`` (default:
    ``user_config_dir() / "skills"``) and the built-in packs is one skill; hidden folders and loose
    files are ignored, and a missing directory holds no skills. When two places hold a skill of the
    same name, the higher one wins and the other goes to ``shadowed``. A malformed skill is recorded
    in ``problems`` and skipped (a lower-precedence copy of it then wins): one bad skill never hides
    the others, and this never raises for one.
    """
    catalog = SkillCatalog()
    for source, directory in skill_dirs(project_root, user_dir):
        for folder in _skill_folders(directory, catalog):
            try:
                skill = parse_skill(folder, source)
            except SkillError as exc:
                catalog.problems.append(SkillProblem(exc.path, exc.problem))
                continue
            except OSError as exc:  # a folder that vanished or cannot be read while we look
                catalog.problems.append(SkillProblem(_display(folder), f"cannot be read: {exc.strerror or exc}"))
                continue
            lower = catalog.skills.get(skill.name)
            if lower is not None:
                catalog.shadowed.append(lower)
            catalog.skills[skill.name] = skill
    rank = {source: index for index, source in enumerate(SOURCES)}
    catalog.shadowed.sort(key=lambda s: (s.name, rank.get(s.source, len(rank))))
    catalog.skills = dict(sorted(catalog.skills.items()))
    return catalog


def _skill_folders(directory: Path, catalog: SkillCatalog) -> list[Path]:
    """The skill folders in ``directory``, sorted by name; none when it does not exist."""
    try:
        entries = sorted(directory.iterdir()) if directory.is_dir() else []
    except OSError as exc:
        catalog.problems.append(SkillProblem(_display(directory), f"cannot be listed: {exc.strerror or exc}"))
        return []
    return [entry for entry in entries if not entry.name.startswith(".") and entry.is_dir()]
