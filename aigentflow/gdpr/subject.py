"""A data subject: the identifiers that name them, how they are matched, and what replaces them.

A subject is matched case-insensitively, as written and as JSON escapes it (the store keeps JSON
text). Nothing here keeps a subject in clear: what is recorded is ``subject_hash``, a keyed hash
(HMAC-SHA256) with the project's key, so that the hash of an e-mail address cannot be reversed by
hashing a list of addresses. The key is ``.aigentflow/gdpr/subject.key`` (mode 0600), never in the
store; pseudonyms are derived from it too, so the same subject always gets the same pseudonym.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from aigentflow.exceptions import UsageError

MIN_IDENTIFIER_CHARS = 3
KEY_FILENAME = "subject.key"


def gdpr_dir(state_dir: Path) -> Path:
    """Where the GDPR tooling keeps its key, journals and exports: ``.aigentflow/gdpr/``."""
    return Path(state_dir) / "gdpr"


def project_key(state_dir: Path) -> bytes:
    """The project's subject key, made (0600) on first use."""
    path = gdpr_dir(state_dir) / KEY_FILENAME
    try:
        return bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    temporary = path.with_name(f".{KEY_FILENAME}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(key.hex())
    try:
        os.link(temporary, path)  # never replaces a key another process made meanwhile
    except FileExistsError:
        pass
    finally:
        temporary.unlink(missing_ok=True)
    return bytes.fromhex(path.read_text().strip())


def normalise(identifier: str) -> str:
    return " ".join(identifier.split()).casefold()


def keyed_hash(key: bytes, identifier: str) -> str:
    """The subject hash recorded in place of an identifier (hex, 64 characters)."""
    return hmac.new(key, normalise(identifier).encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Subject:
    """The identifiers of one data subject (the first is the one the request gave) and the project key."""

    identifiers: tuple[str, ...]
    key: bytes

    @classmethod
    def of(cls, identifier: str, aliases: list[str] | tuple[str, ...], key: bytes) -> Subject:
        names: list[str] = []
        for given in (identifier, *aliases):
            one = given.strip()
            if len(one) < MIN_IDENTIFIER_CHARS:
                raise UsageError(f"the identifier {one!r} is too short to name a person safely (at least "
                                 f"{MIN_IDENTIFIER_CHARS} characters): erasing it would hit unrelated text.")
            if one.casefold() not in {n.casefold() for n in names}:
                names.append(one)
        subject = cls(tuple(names), key)
        for token in (subject.erased_token, subject.pseudonym):
            if subject.search(token):
                raise UsageError(f"the identifier {identifier!r} occurs in its own replacement text; give a longer "
                                 "identifier.")
        return subject

    @property
    def hash(self) -> str:
        return keyed_hash(self.key, self.identifiers[0])

    @property
    def hash8(self) -> str:
        return self.hash[:8]

    @property
    def erased_token(self) -> str:
        return f"[erased:{self.hash8}]"

    @property
    def pseudonym(self) -> str:
        digest = hmac.new(self.key, b"pseudonym:" + normalise(self.identifiers[0]).encode(), hashlib.sha256)
        return f"subject-{digest.hexdigest()[:12]}"

    def replacement(self, pseudonymise: bool) -> str:
        return self.pseudonym if pseudonymise else self.erased_token

    @cached_property
    def forms(self) -> tuple[str, ...]:
        """Every spelling searched for, longest first: each identifier, and its JSON-escaped forms."""
        found: set[str] = set()
        for name in self.identifiers:
            found.add(name)
            found.add(json.dumps(name)[1:-1])
            found.add(json.dumps(name, ensure_ascii=False)[1:-1])
        return tuple(sorted(found, key=lambda f: (-len(f), f)))

    @cached_property
    def pattern(self) -> re.Pattern[str]:
        return re.compile("|".join(re.escape(f) for f in self.forms), re.IGNORECASE)

    @cached_property
    def byte_pattern(self) -> re.Pattern[bytes]:
        """The forms as UTF-8 bytes (ASCII letters case-folded): the byte-level search."""
        return re.compile(b"|".join(re.escape(f.encode()) for f in self.forms), re.IGNORECASE)

    @cached_property
    def re2_pattern(self) -> str:
        """The pattern for DuckDB's ``regexp_*`` (RE2), used with the ``i`` option."""
        return "|".join("".join(c if c.isalnum() or ord(c) > 127 else "\\" + c for c in f) for f in self.forms)

    def search(self, text: str) -> bool:
        return self.pattern.search(text) is not None

    def replace(self, text: str, replacement: str) -> str:
        return self.pattern.sub(replacement.replace("\\", "\\\\"), text)
