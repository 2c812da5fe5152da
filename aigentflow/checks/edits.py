"""The edit guard: file edits proposed by agents are applied only inside a worktree.

Every edit of a batch is checked before any is applied: a relative path with no ``..``, no
absolute or drive prefix, no NUL byte or backslash, nothing under ``.git``, ``.gitmodules`` or
``.aigentflow``, and no symlink on the way that leads out of the worktree. Writes then walk the
directories with ``O_NOFOLLOW`` (a symlink swapped in after the check is refused, not followed)
and replace each file atomically through a temporary file in its own directory.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import uuid
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel, ConfigDict, model_validator

from aigentflow.exceptions import UsageError

PROTECTED_NAMES = frozenset({".git", ".gitmodules", ".aigentflow"})
"""Names no edit may create, change or pass through, at any depth and in any letter case."""

# Windows drives (C:), UNC and device paths: absolute on some system the worktree may meet.
_DRIVE = re.compile(r"^[A-Za-z]:")
# Code points macOS (HFS+) ignores in names: ".g\u200cit" is ".git" there.
_IGNORED_IN_NAMES = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff]")


class EditRefused(UsageError):
    """An edit that would write outside the worktree or into git's own files; nothing was written."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"edit of {path!r} refused: {reason}")


class FileEdit(BaseModel):
    """One file an agent wants written (``content``) or removed (``delete``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: str
    """Relative to the worktree root, with '/' between directories."""
    content: str | None = None
    """The whole new text of the file."""
    delete: bool = False
    """Remove the file instead of writing it."""

    @model_validator(mode="after")
    def _content_or_delete(self) -> FileEdit:
        if self.delete and self.content is not None:
            raise ValueError(f"edit of {self.path!r} has content and delete=True: choose one")
        if not self.delete and self.content is None:
            raise ValueError(f"edit of {self.path!r} has no content: give content or delete=True")
        return self


def _comparable(name: str) -> str:
    """A name as case-insensitive file systems see it (".GIT", ".git.", ".g\u200cit")."""
    return _IGNORED_IN_NAMES.sub("", name).casefold().rstrip(". ")


def _relative_parts(path: str) -> list[str]:
    """The components of ``path``, refused if it is not a plain relative path."""
    if not path or not path.strip():
        raise EditRefused(path, "the path is empty; name a file relative to the worktree")
    if "\0" in path:
        raise EditRefused(path, "the path contains a NUL byte")
    if path.startswith("/") or _DRIVE.match(path):
        raise EditRefused(path, "absolute paths are not allowed; give a path relative to the worktree")
    if "\\" in path:
        raise EditRefused(path, "the path contains a backslash; use '/' between directories")
    if path.endswith("/"):
        raise EditRefused(path, "the path ends with '/'; name a file, not a directory")
    parts = path.split("/")
    if ".." in parts:
        raise EditRefused(path, "'..' is not allowed in edit paths; give a path inside the worktree")
    parts = [part for part in parts if part not in ("", ".")]
    if not parts:
        raise EditRefused(path, "the path names the worktree itself, not a file")
    _refuse_protected(path, parts)
    return parts


def _refuse_protected(path: str, parts: Sequence[str]) -> None:
    for part in parts:
        if _comparable(part) in PROTECTED_NAMES:
            raise EditRefused(
                path, f"{part!r} is git's or aigentflow's own; edits may not touch it"
            )


def check_edit_path(root: Path, path: str) -> Path:
    """The file ``path`` names inside ``root``, symlinks on the way resolved; ``EditRefused``
    (saying why) for anything that is not a plain file path inside the worktree."""
    parts = _relative_parts(path)
    try:
        root = Path(root).resolve(strict=True)
    except (OSError, RuntimeError):
        raise EditRefused(path, f"the worktree {root} does not exist") from None
    current = root
    for index, part in enumerate(parts):
        current = current / part
        if current.is_symlink():
            target = _resolve(path, current)
            shown = "/".join(parts[: index + 1])
            if not target.is_relative_to(root):
                raise EditRefused(path, f"{shown!r} is a symlink to {target}, outside the worktree")
            if index == len(parts) - 1:
                raise EditRefused(path, f"{shown!r} is a symlink; edit its target instead")
        elif index < len(parts) - 1 and current.exists() and not current.is_dir():
            raise EditRefused(path, f"{'/'.join(parts[: index + 1])!r} is a file, not a directory")
    resolved = _resolve(path, root.joinpath(*parts[:-1])) / parts[-1]
    if not resolved.is_relative_to(root) or resolved == root:
        raise EditRefused(path, f"the path resolves to {resolved}, outside the worktree")
    _refuse_protected(path, resolved.relative_to(root).parts)
    return resolved


def _resolve(path: str, location: Path) -> Path:
    try:
        return location.resolve()
    except (OSError, RuntimeError) as exc:
        raise EditRefused(path, f"cannot resolve {location} ({exc})") from None


def apply_edits(root: Path, edits: Sequence[FileEdit], *, max_bytes: int = 5_000_000) -> list[str]:
    """Write or delete every edit, all checked first: one refused edit means none is applied.

    Returns the changed paths relative to ``root``, in the order given.
    """
    root = Path(root).resolve()
    planned: list[tuple[FileEdit, Path, bytes | None]] = []
    seen: set[Path] = set()
    for edit in edits:
        target = check_edit_path(root, edit.path)
        if target in seen:
            raise EditRefused(edit.path, "the batch edits this file twice; merge the edits")
        seen.add(target)
        data = None if edit.content is None else edit.content.encode()
        _check_target(edit, target, data, max_bytes)
        planned.append((edit, target, data))
    changed = []
    for edit, target, data in planned:
        relative = target.relative_to(root)
        if data is None:
            _delete(root, relative, edit.path)
        else:
            _write(root, relative, data, edit.path)
        changed.append(relative.as_posix())
    return changed


def _check_target(edit: FileEdit, target: Path, data: bytes | None, max_bytes: int) -> None:
    if data is not None and len(data) > max_bytes:
        raise EditRefused(
            edit.path, f"the content is {len(data)} bytes, over the limit of {max_bytes}"
        )
    if target.is_dir():
        raise EditRefused(edit.path, "it is a directory; edits change files only")
    if edit.delete and not target.is_file():
        raise EditRefused(edit.path, "there is no such file to delete")
    if target.exists() and not target.is_file():
        raise EditRefused(edit.path, "it is not a regular file")


def _open_directory(root: Path, parts: Sequence[str], path: str, create: bool) -> int:
    """A descriptor of ``root/parts``, walked without following symlinks, made if ``create``."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
    fd = os.open(root, flags)
    try:
        for part in parts:
            try:
                next_fd = os.open(part, flags, dir_fd=fd)
            except FileNotFoundError:
                if not create:
                    raise EditRefused(path, "a directory on the way does not exist") from None
                os.mkdir(part, 0o755, dir_fd=fd)
                next_fd = os.open(part, flags, dir_fd=fd)
            except (NotADirectoryError, OSError) as exc:
                raise EditRefused(
                    path, f"{part!r} changed into a symlink or a file while editing ({exc})"
                ) from None
            os.close(fd)
            fd = next_fd
    except BaseException:
        os.close(fd)
        raise
    return fd


def _write(root: Path, relative: Path, data: bytes, path: str) -> None:
    directory = _open_directory(root, relative.parts[:-1], path, create=True)
    name = relative.parts[-1]
    temporary = f".{name}.{uuid.uuid4().hex[:12]}.tmp"
    try:
        mode = _existing_mode(directory, name, path)
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600,
                     dir_fd=directory)  # fmt: skip
        try:
            with os.fdopen(fd, "wb", closefd=False) as file:
                file.write(data)
            os.fchmod(fd, mode)
        finally:
            os.close(fd)
        os.replace(temporary, name, src_dir_fd=directory, dst_dir_fd=directory)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary, dir_fd=directory)
        raise
    finally:
        os.close(directory)


def _existing_mode(directory: int, name: str, path: str) -> int:
    """The permission bits to keep (0o644 for a new file); refuses a symlink or a non-file."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=directory)
    except FileNotFoundError:
        return 0o644
    except OSError as exc:
        raise EditRefused(path, f"the file is a symlink or cannot be opened ({exc})") from None
    try:
        status = os.fstat(fd)
    finally:
        os.close(fd)
    if not stat.S_ISREG(status.st_mode):
        raise EditRefused(path, "it is not a regular file")
    return stat.S_IMODE(status.st_mode)


def _delete(root: Path, relative: Path, path: str) -> None:
    directory = _open_directory(root, relative.parts[:-1], path, create=False)
    try:
        status = os.stat(relative.parts[-1], dir_fd=directory, follow_symlinks=False)
        if not stat.S_ISREG(status.st_mode):
            raise EditRefused(path, "it is not a regular file; only files are deleted")
        os.unlink(relative.parts[-1], dir_fd=directory)
    finally:
        os.close(directory)
