"""Secret redaction for everything that leaves a process: span text, attributes, logs.

Stdlib only and cheap to import: a ``Redactor`` is built once per run, pickled to every Ray actor,
and applied to every string a span carries before it is written anywhere.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from aigentflow.exceptions import ConfigError

REDACTED = "[REDACTED]"

MIN_SECRET_VALUE_LENGTH = 8
"""Environment values shorter than this are too likely to occur by chance to be redacted."""

SECRET_NAME_WORDS = (
    "KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "AUTH", "COOKIE", "SESSION",
)  # fmt: skip

# Names that contain a secret word without naming a secret: token counts, git authors, keyboards.
_HARMLESS_NAME_PARTS = re.compile(
    r"AUTHOR(?!I[SZ])|TOKENS|TOKENIZ|TOKEN_?COUNT|KEYWORD|KEYBOARD|KEYSTROKE|HOTKEY|MONKEY|DONKEY"
)
_SECRET_NAME = re.compile("|".join(SECRET_NAME_WORDS))


@functools.lru_cache(maxsize=4096)
def looks_secret_name(name: str) -> bool:
    """Whether a variable or field name suggests a secret value (API_KEY yes, input_tokens no)."""
    return _SECRET_NAME.search(_HARMLESS_NAME_PARTS.sub("", name.upper())) is not None


@dataclass(frozen=True)
class _Rule:
    """A pattern tried only when one of its literal triggers occurs: a substring test is ~100x
    cheaper than a regex scan, and most traced strings trigger nothing."""

    triggers: tuple[str, ...]
    pattern: re.Pattern[str]
    replacement: str | Callable[[re.Match[str]], str] = REDACTED
    lowered: bool = False  # triggers are matched against the lowercased text


# Provider key shapes. Each is bounded on the left so that words like "risk-" or "task-" stay.
KEY_PATTERNS: dict[str, tuple[tuple[str, ...], str]] = {
    "anthropic": (("sk-ant-",), r"(?<![A-Za-z0-9_-])sk-ant-[A-Za-z0-9_-]{16,}"),
    "openai": (("sk-",), r"(?<![A-Za-z0-9_-])sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{16,}"),
    "github": (
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_", "github_pat_"),
        r"(?<![A-Za-z0-9_])(?:gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,})",
    ),
    "aws_access_key": (("AKIA", "ASIA"), r"(?<![A-Z0-9])(?:AKIA|ASIA)[0-9A-Z]{16}(?![0-9A-Z])"),
    "slack": (("xox",), r"(?<![A-Za-z0-9])xox[baprs]-[A-Za-z0-9-]{10,}"),
    "google": (("AIza",), r"(?<![A-Za-z0-9_-])AIza[0-9A-Za-z_-]{35}"),
    # An unterminated block (a truncated log) is redacted to the end of the text.
    "pem_private_key": (
        ("PRIVATE KEY",),
        r"(?s)-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----"
        r"(?:.*?-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|.*)",
    ),
    "url_credentials": (("://",), r"(?<=://)[^/\s:@]+:[^/\s@]+(?=@)"),
}

_ALPHANUMERIC_SHAPES = ("aws_access_key", "google")  # the key shapes without punctuation

# "Bearer <token>": the token needs a digit or some length, so prose ("a bearer token") stays.
_BEARER = re.compile(
    r"(?i)(?P<prefix>\bbearer\s+)"
    r"(?:[A-Za-z0-9._~+/-]{20,}=*|(?=[A-Za-z0-9._~+/-]*\d)[A-Za-z0-9._~+/-]{8,}=*)"
)

# key=value, key: value, "key": "value", Authorization: Basic xxx. The match starts at the secret
# word (a case-sensitive alternation scans far faster than a case-insensitive one); the whole
# name around it is checked in code, so input_tokens=12 stays.
_NAME_WORDS = ("key", "token", "secret", "passwd", "password", "credential", "auth", "cookie",
               "session")  # fmt: skip
_ASSIGNMENT = re.compile(
    "(?:" + "|".join(w for word in _NAME_WORDS for w in (word, word.upper(), word.title())) + ")"
    r"[\w.-]*(?P<separator>[\"']?[ \t]*[:=](?!=)[ \t]*)"
    r"(?P<value>\[REDACTED\]|(?i:basic|bearer|token|digest)[ \t]+[^\s\"',;]+"
    r"|\"(?:[^\"\\\n]|\\.)*\"|'[^'\n]*'|[^\s\"',;&}\]]+)"
)
_NAME_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")


def _redact_assignment(match: re.Match[str]) -> str:
    text, start = match.string, match.start()
    while start > 0 and text[start - 1] in _NAME_CHARS:
        start -= 1
    if not looks_secret_name(text[start : match.start("separator")]):
        return match.group(0)
    value = match.group("value")
    quote = value[0] if value[0] in "\"'" else ""
    return text[match.start() : match.end("separator")] + quote + REDACTED + quote


def _compile_extra(pattern: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ConfigError(
            f"redaction pattern {pattern!r} is not a valid regular expression ({exc}); fix or "
            "remove it"
        ) from None


class Redactor:
    """Replaces known secret values and secret-shaped text with ``[REDACTED]``."""

    _CACHE_LIMIT = 8192
    _CACHEABLE_LENGTH = 256

    def __init__(self, values: Iterable[str] = (), patterns: Iterable[str] = ()) -> None:
        # Longest first, so that a value containing a shorter one is replaced whole.
        unique_values = {value for value in values if value}
        self.values: tuple[str, ...] = tuple(sorted(unique_values, key=len, reverse=True))
        self.extra_patterns: tuple[str, ...] = tuple(patterns)
        self._compile()

    @classmethod
    def from_environment(
        cls,
        env: Mapping[str, str] | None = None,
        extra_values: Iterable[str] = (),
        extra_patterns: Iterable[str] = (),
    ) -> Redactor:
        """Known secrets = values of secret-looking environment variables, plus ``extra_values``."""
        env = os.environ if env is None else env
        values = [
            value
            for name, value in env.items()
            if len(value) >= MIN_SECRET_VALUE_LENGTH and looks_secret_name(name)
        ]
        return cls([*values, *extra_values], extra_patterns)

    def _compile(self) -> None:
        rules = [
            _Rule(triggers, re.compile(pattern)) for triggers, pattern in KEY_PATTERNS.values()
        ]
        rules.append(_Rule(("bearer",), _BEARER, rf"\g<prefix>{REDACTED}", lowered=True))
        rules.append(_Rule(_NAME_WORDS, _ASSIGNMENT, _redact_assignment, lowered=True))
        self._rules = tuple(rules)
        self._alphanumeric_rules = tuple(
            rule for name, rule in zip(KEY_PATTERNS, rules, strict=False) if name in _ALPHANUMERIC_SHAPES
        )
        self._known = re.compile("|".join(map(re.escape, self.values))) if self.values else None
        self._extra = tuple(_compile_extra(pattern) for pattern in self.extra_patterns)
        self._cache: dict[str, str] = {}

    def __getstate__(self) -> dict[str, Any]:
        return {"values": self.values, "extra_patterns": self.extra_patterns}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.values = state["values"]
        self.extra_patterns = state["extra_patterns"]
        self._compile()

    def __repr__(self) -> str:
        known, extra = len(self.values), len(self.extra_patterns)
        return f"Redactor({known} known values, {extra} extra patterns)"

    @property
    def redacted_texts(self) -> Mapping[str, str]:
        """Short texts already redacted, each with its result: a hot loop may look a text up here
        first and call ``redact_text`` only when it is missing."""
        return self._cache

    def redact_text(self, text: str) -> str:
        """``text`` with every known secret value and secret-shaped substring replaced."""
        if len(text) > self._CACHEABLE_LENGTH:
            return self._redact_uncached(text)
        cached = self._cache.get(text)
        if cached is None:
            cached = self._redact_uncached(text)
            if len(self._cache) >= self._CACHE_LIMIT:
                self._cache.clear()
            self._cache[text] = cached
        return cached

    def _redact_uncached(self, text: str) -> str:
        if self._known is not None and any(value in text for value in self.values):
            text = self._known.sub(REDACTED, text)
        # Ids, kinds and single words have no punctuation: only two key shapes can occur in them.
        rules = self._alphanumeric_rules if text.isalnum() else self._rules
        lowered = text.lower()
        for rule in rules:
            haystack = lowered if rule.lowered else text
            if any(trigger in haystack for trigger in rule.triggers):
                text = rule.pattern.sub(rule.replacement, text)
                lowered = text.lower()
        for pattern in self._extra:
            text = pattern.sub(REDACTED, text)
        return text

    def is_clean(self, text: str) -> bool:
        """Whether ``text`` contains nothing this redactor would replace."""
        return self.redact_text(text) == text

    def redact(self, obj: Any) -> Any:
        """A copy of ``obj`` with strings redacted inside dicts, lists and tuples.

        A dict value under a secret-looking key (``password``, ``api_key``) is replaced whole,
        whatever it holds; numbers and booleans elsewhere are kept.
        """
        if isinstance(obj, str):
            return self.redact_text(obj)
        if isinstance(obj, dict):
            redacted: dict[Any, Any] = {}
            for key, value in obj.items():
                secret_key = isinstance(key, str) and looks_secret_name(key)
                new_key = self.redact_text(key) if isinstance(key, str) else key
                if secret_key and value is not None and not isinstance(value, bool):
                    redacted[new_key] = REDACTED
                else:
                    redacted[new_key] = self.redact(value)
            return redacted
        if isinstance(obj, list):
            return [self.redact(item) for item in obj]
        if isinstance(obj, tuple):
            return tuple(self.redact(item) for item in obj)
        return obj
