"""Spans as the rows every trace store keeps: text fields redacted, attributes redacted and encoded as
one JSON object, in ``COLUMNS`` order.

``RowEncoder.values`` is the hot path of every sink (each span a run records passes through it once).
It handles the spans runs make (exact ``str`` fields, flat attributes of str/int/float/bool/None) in
a few dictionary lookups; any other span goes through ``span_row``, the general form, which it gives
the same result as.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any

import orjson

from aigentflow.redact import REDACTED, Redactor, looks_secret_name

COLUMN_TYPES: dict[str, str] = {
    "span_id": "VARCHAR",
    "trace_id": "VARCHAR",
    "parent_id": "VARCHAR",
    "run_id": "VARCHAR",
    "tenant_id": "VARCHAR",
    "name": "VARCHAR",
    "kind": "VARCHAR",
    "start_ns": "BIGINT",
    "end_ns": "BIGINT",
    "status": "VARCHAR",
    "error": "VARCHAR",
    "attributes": "VARCHAR",  # a JSON object
}
COLUMNS = tuple(COLUMN_TYPES)
Row = tuple[Any, ...]
"""A span's values in ``COLUMNS`` order."""

UNSTORABLE = (KeyError, TypeError, ValueError, AttributeError)
"""What ``span_row`` raises for a span that cannot be stored."""

_TEXT_FIELDS = tuple(n for n, t in COLUMN_TYPES.items() if t == "VARCHAR" and n != "attributes")
_OPTIONAL_FIELDS = ("parent_id", "error")
_TIME_FIELDS = ("start_ns", "end_ns")
_ID_FIELDS = frozenset({"span_id", "trace_id", "parent_id"})
_HEX_DIGITS = "0123456789abcdef"
_ID_LENGTHS = (16, 32)
_INT64 = range(-(2**63), 2**63)
_SCALARS = frozenset({int, float, bool})
_CACHE_LIMIT = 4096
_CLEAN_TEXT_LENGTH = 256  # longer texts (outputs, prompts) vary: not worth keeping
_encode_json = json.JSONEncoder(ensure_ascii=False, allow_nan=False).encode


def _learn(known: set[Any], value: Any) -> None:
    if len(known) >= _CACHE_LIMIT:
        known.clear()
    known.add(value)


class _General(Exception):
    """The fast path met something only ``span_row`` handles."""


class RowEncoder:
    """Spans to rows for one redactor (None: no redaction), with what it learnt about attribute names."""

    def __init__(self, redactor: Redactor | None) -> None:
        self.redactor = redactor
        self._keys: dict[str, tuple[str, bool, bool]] = {}  # name -> ``_plan``
        self._clean_keys: set[str] = set()  # names whose ``_plan`` says: neither redacted nor secret
        self._clean_texts: set[str] = set()  # short attribute texts that redaction leaves unchanged
        self._heads: dict[tuple[str, ...], tuple[str, ...]] = {}  # (run, tenant, name, kind, status), redacted
        self._ids: set[str] = set()  # trace and parent ids made by ``spans``

    def values(self, span: Mapping[str, Any]) -> Row:
        """The row of ``span``; raises one of ``UNSTORABLE`` for a span that cannot be stored.

        One function on purpose (no call per span beyond the redactor's): the spans runs make take the
        first path; anything it does not handle raises ``_General`` and goes through ``span_row``."""
        try:
            span_id, trace_id, parent_id = span["span_id"], span["trace_id"], span.get("parent_id")
            start_ns, end_ns, error = span["start_ns"], span["end_ns"], span.get("error")
            head = (span["run_id"], span["tenant_id"], span["name"], span["kind"], span["status"])
            attributes = span.get("attributes") or {}
            if not (
                type(span_id) is str and type(trace_id) is str and (parent_id is None or type(parent_id) is str)
                and (error is None or type(error) is str) and type(start_ns) is int and type(end_ns) is int
                and start_ns in _INT64 and end_ns in _INT64 and type(attributes) is dict
            ):  # fmt: skip
                raise _General
            redactor = self.redactor
            if redactor is None:
                if not all(type(value) is str for value in head):
                    raise _General
                for value in attributes.values():
                    kind_of = type(value)
                    if not (kind_of is str or kind_of is int or kind_of is bool or value is None
                            or (kind_of is float and value * 0.0 == 0.0)):  # fmt: skip
                        raise _General
            else:
                text = redactor.redact_text
                if not (len(span_id) in _ID_LENGTHS and not span_id.strip(_HEX_DIGITS)):  # ``_is_made_id``
                    span_id = text(span_id)
                ids = self._ids  # trace and parent ids repeat from span to span: checked once each
                if trace_id not in ids:
                    trace_id = self._id(trace_id, text)
                if parent_id is not None and parent_id not in ids:
                    parent_id = self._id(parent_id, text)
                clean_head = self._heads.get(head)
                if clean_head is None:
                    if not all(type(value) is str for value in head):
                        raise _General
                    if len(self._heads) >= _CACHE_LIMIT:
                        self._heads.clear()
                    clean_head = self._heads[head] = tuple(map(text, head))
                head = clean_head
                if error is not None:
                    error = text(error)
                # As ``_redact_attributes``, for flat attributes: ``attributes`` itself when redaction
                # changes nothing in them (the usual case: a set lookup per attribute, as names that are
                # neither redacted nor secret and texts that redaction leaves as they are are learnt
                # once), else a redacted copy.
                clean_keys, clean_texts = self._clean_keys, self._clean_texts
                for key, value in attributes.items():
                    if key not in clean_keys:
                        if not (self._keys.get(key) or self._plan(key, text))[2]:
                            attributes = self._copy(attributes, text)
                            break
                        _learn(clean_keys, key)
                    kind_of = type(value)
                    if kind_of is int or kind_of is bool or value is None:
                        continue
                    if kind_of is str:
                        if value not in clean_texts:
                            if text(value) != value:
                                attributes = self._copy(attributes, text)
                                break
                            if len(value) <= _CLEAN_TEXT_LENGTH:
                                _learn(clean_texts, value)
                    elif not (kind_of is float and value * 0.0 == 0.0):  # finite: JSON has no NaN
                        raise _General
            try:
                encoded = orjson.dumps(attributes).decode()
            except TypeError:  # a key that is not a str, an int past 64 bits, text that is not UTF-8
                raise _General from None
            run_id, tenant_id, name, kind, status = head
            return (span_id, trace_id, parent_id, run_id, tenant_id, name, kind, start_ns, end_ns, status, error,
                    encoded)  # fmt: skip
        except _General:
            row = span_row(span, self.redactor)
            return tuple(row[name] for name in COLUMNS)

    def _id(self, value: str, text: Any) -> str:
        if not _is_made_id(value):
            return text(value)
        if len(self._ids) >= _CACHE_LIMIT:
            self._ids.clear()
        self._ids.add(value)
        return value

    def _plan(self, key: Any, text: Any) -> tuple[str, bool, bool]:
        """(redacted name, names a secret, neither redacted nor secret) of an attribute name."""
        if type(key) is not str:
            raise _General
        if len(self._keys) >= _CACHE_LIMIT:
            self._keys.clear()
        clean, secret = text(key), _secret_name(key)
        plan = self._keys[key] = (clean, secret, clean == key and not secret)
        return plan

    def _copy(self, attributes: dict[Any, Any], text: Any) -> dict[str, Any]:
        clean: dict[str, Any] = {}
        for key, value in attributes.items():
            clean_key, secret, _ = self._keys.get(key) or self._plan(key, text)
            kind_of = type(value)
            if kind_of is str:
                clean[clean_key] = REDACTED if secret else text(value)
            elif kind_of is bool or value is None:
                clean[clean_key] = value
            elif kind_of is int or (kind_of is float and value * 0.0 == 0.0):
                clean[clean_key] = REDACTED if secret else value
            else:
                raise _General
        return clean


def span_row(span: Mapping[str, Any], redactor: Redactor | None) -> dict[str, Any]:
    """A span as the row every trace store keeps: its text fields redacted, its attributes redacted
    and encoded as a JSON object; raises one of ``UNSTORABLE`` for a span that cannot be stored.

    Ids made by ``spans`` (lowercase hex, 16 or 32 characters: random or a hash, with no room for a
    secret) are kept as they are; any other id is redacted like the other text fields."""
    attributes = span.get("attributes") or {}
    if not isinstance(attributes, Mapping):
        raise TypeError(f"attributes must be a mapping, not {type(attributes).__name__}")
    row: dict[str, Any] = {}
    for field in _TEXT_FIELDS:
        value = span.get(field) if field in _OPTIONAL_FIELDS else span[field]
        if value is None:
            if field not in _OPTIONAL_FIELDS:
                raise TypeError(f"span field {field!r} must be a string, not None")
        elif not isinstance(value, str):
            raise TypeError(f"span field {field!r} must be a string")
        elif redactor is not None and not (field in _ID_FIELDS and _is_made_id(value)):
            value = redactor.redact_text(value)
        row[field] = value
    for field in _TIME_FIELDS:
        value = span[field]
        if type(value) is not int or value not in _INT64:
            raise TypeError(f"span field {field!r} must be an int of nanoseconds")
        row[field] = value
    clean = _redact_attributes(attributes, redactor) if redactor is not None else attributes
    row["attributes"] = _encode_json(clean)
    return {name: row[name] for name in COLUMNS}


def _is_made_id(value: str) -> bool:
    return len(value) in _ID_LENGTHS and not value.strip(_HEX_DIGITS)


@functools.lru_cache(maxsize=4096)
def _secret_name(key: str) -> bool:
    return looks_secret_name(key)


def _redact_attributes(attributes: Mapping[str, Any], redactor: Redactor) -> dict[str, Any]:
    """``redactor.redact(dict(attributes))``, the same result, faster for the flat attributes spans have:
    a number or a bool is kept, a string redacted through the redactor's cache, a key's secret-looking
    name looked up once; anything nested goes through ``redact``."""
    clean: dict[Any, Any] = {}
    redact_text = redactor.redact_text
    for key, value in attributes.items():
        if type(key) is not str:
            return redactor.redact(dict(attributes))
        if _secret_name(key) and value is not None and not isinstance(value, bool):
            clean[redact_text(key)] = REDACTED
        elif type(value) is str:
            clean[redact_text(key)] = redact_text(value)
        elif type(value) in _SCALARS or value is None:
            clean[redact_text(key)] = value
        else:
            clean[redact_text(key)] = redactor.redact(value)
    return clean


def is_storable(row: Row | Mapping[str, Any]) -> bool:
    """Whether the row can be stored: its text is valid UTF-8 (no lone surrogates)."""
    values = row.values() if isinstance(row, Mapping) else row
    try:
        for value in values:
            if type(value) is str and not value.isascii():
                value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
