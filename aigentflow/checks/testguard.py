"""Tests are the contract: who may touch them, and edits that would weaken them.

The Tester writes only test files (``is_test_path``). Implementers (developers, the Bug Fixer) may
change a test file only without weakening it: an edit that deletes a test file, leaves it with fewer
assertions than before, or adds a skip/xfail marker is refused with the reason. Counting is textual
and language-agnostic enough for Python (``assert``, ``self.assert*``, ``pytest.raises``) and
JavaScript (``expect(``, ``assert.``); it errs on the side of refusing.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from aigentflow.project.ecosystems import is_test_file

_ASSERTION = re.compile(r"(?m)^\s*assert\b|\bself\.assert\w*\(|\bpytest\.raises\(|\bexpect\(|\bassert\.\w+\(|"
                        r"\bassert(?:Equal|True|False|Raises|Throws)\w*\(")
_SKIPS = re.compile(r"@pytest\.mark\.(?:skip|skipif|xfail)\b|\bpytest\.(?:skip|xfail)\(|@unittest\.skip\w*|"
                    r"\bself\.skipTest\(|\b(?:it|test|describe)\.(?:skip|todo)\(|\bx(?:it|describe|test)\(|"
                    r"#\[ignore\]|@Disabled\b|\bt\.Skip\w*\(")
TEST_DIRS = frozenset({"tests", "test", "__tests__", "spec", "specs"})


def is_test_path(path: str) -> bool:
    """A test file, or a file that only serves tests (under a tests directory, ``conftest.py``)."""
    pure = PurePosixPath(path)
    return is_test_file(path) or pure.name == "conftest.py" or bool(set(pure.parts[:-1]) & TEST_DIRS)


def assertion_count(text: str) -> int:
    return len(_ASSERTION.findall(text))


def skip_count(text: str) -> int:
    return len(_SKIPS.findall(text))


def weakening(path: str, before: str | None, after: str | None) -> str | None:
    """Why changing test file ``path`` from ``before`` to ``after`` weakens the tests, or None.

    ``before`` None: a new file (never weakening); ``after`` None: the file is deleted."""
    if not is_test_path(path) or before is None:
        return None
    if after is None:
        return "it deletes a test file"
    lost = assertion_count(before) - assertion_count(after)
    if lost > 0:
        return f"it removes {lost} assertion(s) from a test file"
    added = skip_count(after) - skip_count(before)
    if added > 0:
        return f"it marks {added} test(s) skipped or expected to fail"
    return None
