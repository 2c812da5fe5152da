"""Can the run's model be called at all? Checked before a run is recorded or Ray is started.

A model name must route to a provider litellm knows, the provider's key variables must be set (as
litellm's ``validate_environment`` decides them), and a replay model's cassette must exist. The
answers come from the table in ``providers.py`` (no litellm import: the check takes milliseconds);
only a name the table cannot decide costs an ``import litellm``. Messages name the model, the
variables and how to set them, never a variable's value. At run time, a refused or missing key is
not worth retrying: ``is_credential_failure`` and ``credential_failure_message`` say so.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from aigentflow.exceptions import UsageError
from aigentflow.models import providers
from aigentflow.models.names import EXAMPLES
from aigentflow.models.spec import REPLAY_PREFIX

OFFLINE_HINT = ("or run offline from a recorded cassette with `--model replay/<cassette>` (`aigentflow demo` runs "
                "the bundled replay/demo)")

MISSING_CREDENTIALS = re.compile(
    r"missing credentials|missing [\w .-]{0,40}?api[ _-]?key|no (?:api[ _-]?)?key is set"
    r"|api[ _-]?key (?:is )?(?:missing|not (?:set|found|provided|valid))|invalid api[ _-]?key",
    re.IGNORECASE,
)
"""How providers (through litellm) say a key is missing or unusable, whatever exception type carries it:
the openai SDK's "Missing credentials" comes back as an InternalServerError, which is otherwise transient."""


def provider_of(name: str, environ: Mapping[str, str] = os.environ) -> str:
    """The provider litellm routes ``name`` to; a UsageError with examples if it routes it nowhere."""
    if not name or name != name.strip():
        raise UsageError(f"model name {name!r} is empty or has spaces; use a litellm name like {EXAMPLES}.")
    if name.startswith(REPLAY_PREFIX):
        return "replay"
    try:
        provider = providers.resolve(name, environ)
    except providers.Undecided:
        provider = _litellm_route(name, environ)
    if provider is not None:
        return provider
    prefix, slash, _ = name.partition("/")
    if slash:
        raise UsageError(f"unknown model {name!r}: {prefix!r} is not a provider litellm knows. Name models as "
                         f"provider/model, e.g. {EXAMPLES} (providers: https://docs.litellm.ai/docs/providers).")
    raise UsageError(f"unknown model {name!r}: litellm cannot tell which provider serves it. Name models as "
                     f"provider/model, e.g. {EXAMPLES}.")


def check_models(names: Iterable[str], cassettes_dir: Path | None, environ: Mapping[str, str] = os.environ, *,
                 keys: bool = True) -> None:
    """Refuse, with what to do, a model that cannot be called from this environment: an unknown name,
    a missing cassette, or (with ``keys``) an unset key variable. Returns None if all can be called."""
    from aigentflow.models.cassette import resolve_cassette_path

    problems = []
    for name in dict.fromkeys(names):
        provider = provider_of(name, environ)
        if provider == "replay":
            resolve_cassette_path(name[len(REPLAY_PREFIX):], cassettes_dir)
            continue
        if not keys or provider in providers.INTERACTIVE:
            continue
        alternatives = _alternatives(name, provider, environ)
        unset = providers.missing(provider, environ, alternatives)
        if unset:
            problems.append(_describe_missing(name, provider, alternatives, unset, environ))
    if problems:
        raise UsageError(" ".join(problems))


def _alternatives(name: str, provider: str, environ: Mapping[str, str]) -> list[list[str]]:
    try:
        if providers.known(provider):
            return providers.requirements(provider)
    except providers.Undecided:
        pass
    litellm = providers._litellm()
    with providers.environment({k: v for k, v in environ.items() if v.strip()}):
        verdict = litellm.validate_environment(name)
    return [[]] if verdict["keys_in_environment"] else [list(verdict["missing_keys"])]


def _litellm_route(name: str, environ: Mapping[str, str]) -> str | None:
    litellm = providers._litellm()
    with providers.environment(dict(environ)):
        return providers._route(litellm, name)


def _join(variables: list[str], word: str) -> str:
    return variables[0] if len(variables) == 1 else ", ".join(variables[:-1]) + f" {word} " + variables[-1]


def _describe_missing(name: str, provider: str, alternatives: list[list[str]], unset: list[list[str]],
                      environ: Mapping[str, str]) -> str:
    others = [_join(alt, "and") for alt in alternatives[1:]]
    instead = f" (or instead {_join(others, 'or')})" if others else ""
    first = unset[0]
    absent, empty = [v for v in first if v not in environ], [v for v in first if v in environ]
    state = " and ".join(f"{_join(group, 'and')} {'is' if len(group) == 1 else 'are'} {what}"
                         for group, what in ((absent, "not set"), (empty, "empty")) if group)
    exports = " ".join(f"{v}=..." for v in first)
    return (f"model {name} cannot be called: provider {provider} needs {_join(alternatives[0], 'and')}{instead}; "
            f"{state} in this environment. Set {'it' if len(first) == 1 else 'them'} (`export {exports}`) and "
            f"try again, {OFFLINE_HINT}.")


# -- at run time -----------------------------------------------------------------------------------


def is_credential_failure(message: str) -> bool:
    """The text of a failed completion says the key is missing or unusable."""
    return MISSING_CREDENTIALS.search(message) is not None


def credential_variables(model: str) -> list[str]:
    """The variables that carry ``model``'s credentials, by the table (none if it cannot tell)."""
    try:
        provider = providers.resolve(model)
        alternatives = providers.requirements(provider) if provider else []
    except providers.Undecided:
        return []
    return list(dict.fromkeys(v for alt in alternatives for v in alt))


def credential_failure_message(model: str, role: str, kind: str, text: str) -> str:
    """A refused or missing key, for a person: what to check, and that nothing was retried."""
    variables = credential_variables(model)
    for variable in variables:  # never repeat a key's value, even one the provider echoed back
        value = os.environ.get(variable, "")
        if len(value) >= 4:
            text = text.replace(value, "[redacted]")
    text = re.sub(r"(api key provided:?\s*)\S+?(?=[.,;]?(?:\s|$))", r"\1[redacted]", text, flags=re.IGNORECASE)
    what = ("refused access with these credentials (permission denied)" if kind == "PermissionDeniedError"
            else "refused the credentials, or they are missing")
    check = (f"check {_join(variables, 'and')} in the environment of the process that calls the model "
             "(on a cluster: the Model Gateway's node)"
             if variables else "check the provider's key variables in the environment that calls the model")
    return (f"{role}: the provider of {model} {what} ({kind}); {check}. The call was not retried. "
            f"The provider said: {text[:300]}")
