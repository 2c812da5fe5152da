"""Replay cassettes: readable JSON files of recorded model exchanges.

A cassette is ``{"version": 1, "model": <model it was recorded with>, "entries": [...]}``. Each entry
carries the hash of the prompt it was recorded for, the agent's (role, step, attempt) (``attempt``
counts the model calls of one step: 2 is the retry after a reply that broke the schema), the reply
(``response``: a JSON object, or a string used verbatim) and its token usage. Replay answers a prompt
only from an entry recorded for that prompt's hash. A cassette that says ``"match": "lenient"`` (a
hand-written script, e.g. in tests) is matched by (role, step, attempt) whatever the prompt, and a
run replaying it says so in every output.
An entry may add ``delay_s`` (seconds to wait before answering, to replay a model's latency) or
carry ``error`` (``rate_limit``, ``server_error``, ``timeout``) to inject a transient failure: on
every try, or with ``error_times: N`` on the first N tries of each run (then ``response`` answers).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from aigentflow.exceptions import UsageError

CASSETTE_VERSION = 1

MISS_MARKER = "no recorded answer"
"""In a replay miss's error text: no entry was recorded for the call's prompt."""
DRIFT_MARKER = "prompt drift"
"""In a lenient replay's warnings: the prompt differs from the one the entry was recorded against."""


@dataclass(frozen=True)
class EntryKey:
    role: str
    step: str
    attempt: int

    def describe(self) -> str:
        return f"role={self.role} step={self.step} attempt={self.attempt}"


def entry_key(entry: dict[str, Any]) -> EntryKey:
    return EntryKey(str(entry["role"]), str(entry["step"]), int(entry.get("attempt", 1)))


def find_entry(cassette: dict[str, Any], key: EntryKey) -> dict[str, Any] | None:
    for entry in cassette.get("entries", []):
        if entry_key(entry) == key:
            return entry
    return None


def find_recorded(cassette: dict[str, Any], phash: str, key: EntryKey) -> dict[str, Any] | None:
    """The entry recorded for the prompt with hash ``phash``; of several, the one of the same call."""
    matches = [e for e in cassette.get("entries", []) if e.get("prompt_hash") == phash]
    return next((e for e in matches if entry_key(e) == key), matches[0] if matches else None)


def miss_advice(cassette: dict[str, Any], key: EntryKey, phash: str) -> str:
    """Why a prompt has no recording, and what to do: the text after a miss's first sentence."""
    same_call = find_entry(cassette, key)
    if same_call is not None:
        why = (f"The cassette has an answer for this agent and step, recorded for another prompt "
               f"({same_call.get('prompt_hash') or 'no hash'}): the feature request, the project or a prompt "
               "layer differs from the recording. ")
    else:
        why = "Nothing in the cassette was recorded for this agent and step. "
    return (why + "A replay model only repeats answers recorded for the same prompt. To run this request, use a "
            "real model: `--model provider/name` with its API key (e.g. `--model openai/gpt-4o-mini` and "
            "OPENAI_API_KEY), adding `--record PATH` to keep its answers as a cassette. If you changed the "
            "demo's prompt layers, refresh its hashes with `python -m aigentflow.demo.rerecord`.")


def response_text(entry: dict[str, Any]) -> str:
    response = entry.get("response", "")
    return response if isinstance(response, str) else json.dumps(response, indent=2, ensure_ascii=False)


def resolve_cassette_path(name: str, project_cassettes: Path | None = None) -> Path:
    """Where ``replay/<name>`` lives: a path, a project cassette, or one shipped with aigentflow."""
    candidates: list[Path] = []
    as_path = Path(name)
    if as_path.suffix == ".json" or os.sep in name:
        candidates.append(as_path)
    if project_cassettes is not None:
        candidates.append(project_cassettes / f"{name}.json")
    candidates.append(Path(str(resources.files("aigentflow") / "cassettes" / f"{name}.json")))
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    shipped = sorted(p.stem for p in Path(str(resources.files("aigentflow") / "cassettes")).glob("*.json"))
    raise UsageError(
        f"no cassette {name!r} for model replay/{name}: looked in "
        + ", ".join(str(c) for c in candidates)
        + f". Shipped cassettes: {', '.join(shipped) or 'none'}; record one with `--record PATH`."
    )


def load_cassette(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise UsageError(f"cassette {path} is unreadable: {exc}. Fix or re-record it.") from None
    if not isinstance(data, dict) or not isinstance(data.get("entries"), list):
        raise UsageError(f"cassette {path} is not a cassette (needs an object with an 'entries' list).")
    for index, entry in enumerate(data["entries"]):
        if not isinstance(entry, dict) or "role" not in entry or "step" not in entry:
            raise UsageError(f"cassette {path}: entry {index} needs 'role' and 'step'.")
    return data


def _recording_key(entry: dict[str, Any]) -> tuple[EntryKey, str]:
    return entry_key(entry), str(entry.get("prompt_hash", ""))


def append_entries(path: Path, entries: list[dict[str, Any]], model: str) -> None:
    """Add recorded entries and write the file atomically. A new recording of the same call for the same
    prompt replaces the old one; recordings of other prompts (another request) are kept beside it."""
    data = load_cassette(path) if path.exists() else {"version": CASSETTE_VERSION, "model": model, "entries": []}
    new_keys = {_recording_key(e) for e in entries}
    kept = [e for e in data["entries"] if _recording_key(e) not in new_keys]
    data["entries"] = kept + entries
    write_json_atomic(path, data)


def write_json_atomic(path: Path, data: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    with os.fdopen(fd, "w") as handle:
        json.dump(data, handle, indent=2, ensure_ascii=False)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
