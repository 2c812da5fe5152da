"""aigentflow's OpenFeature provider: the preset flags and the flags files, served to the OpenFeature SDK.

    from openfeature import api
    from openfeature.evaluation_context import EvaluationContext
    from aigentflow.flags.provider import AigentflowProvider

    api.set_provider(AigentflowProvider.for_project(root), domain="aigentflow")
    client = api.get_client("aigentflow")
    client.get_boolean_value("agents.reviewer", False, EvaluationContext("alice", {"tenant": "acme"}))

The context's attributes ``tenant``, ``project``, ``role`` and ``user`` are what rules match on; its
targeting key (else ``user``) is the subject splits and rollouts are sticky to. Asking for a flag with
the wrong type answers the caller's default with error code TYPE_MISMATCH and a message naming the
flag's type; an unknown flag, FLAG_NOT_FOUND with the closest names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from openfeature.evaluation_context import EvaluationContext
from openfeature.exception import ErrorCode
from openfeature.flag_evaluation import FlagResolutionDetails, FlagValueType, Reason
from openfeature.provider import AbstractProvider, Metadata

from aigentflow.flags.evaluate import Evaluator, Resolution

if TYPE_CHECKING:
    from aigentflow.config.loader import EffectiveConfig

_REASONS = {reason.value: reason for reason in Reason}
_ERRORS = {code.value: code for code in ErrorCode}


class AigentflowProvider(AbstractProvider):
    """Evaluates flags with an ``Evaluator`` (``evaluate.py``); holds no state but its definitions."""

    def __init__(self, evaluator: Evaluator) -> None:
        super().__init__()
        self.evaluator = evaluator
        self._details: dict[int, tuple[Resolution, FlagResolutionDetails[Any]]] = {}

    @classmethod
    def for_project(cls, project_root: Path | None, overrides: Mapping[str, str] | None = None,
                    env: Mapping[str, str] | None = None) -> AigentflowProvider:
        """The provider of a project's flags: its configuration's preset and overrides, and the flags files."""
        from aigentflow.config.loader import load_config
        from aigentflow.flags.load import definitions, flag_files

        config = load_config(project_root, overrides, env)
        return cls(Evaluator(definitions(config, flag_files(project_root, env))))

    def get_metadata(self) -> Metadata:
        return Metadata(name="aigentflow")

    def resolve(self, flag_key: str, default_value: Any, context: EvaluationContext | None,
                expected: str | None) -> FlagResolutionDetails[Any]:
        """One flag, as OpenFeature details: on an error, ``default_value`` with the error's code and message."""
        if context is None:
            resolution = self.evaluator.evaluate(flag_key, {}, None, expected)
        else:
            resolution = self.evaluator.evaluate(flag_key, context.attributes, context.targeting_key, expected)
        if resolution.error_code is not None or resolution.type != expected:  # an error, or an integer as float
            return details(resolution, default_value)
        # the evaluator's answers are prepared objects: their OpenFeature details are made once too
        # (the SDK copies them into the FlagEvaluationDetails it returns, never changes them)
        cached = self._details.get(id(resolution))
        if cached is None or cached[0] is not resolution:
            cached = self._details[id(resolution)] = (resolution, details(resolution, default_value))
        return cached[1]

    def resolve_boolean_details(self, flag_key: str, default_value: bool,
                                evaluation_context: EvaluationContext | None = None) -> FlagResolutionDetails[bool]:
        return self.resolve(flag_key, default_value, evaluation_context, "boolean")

    def resolve_integer_details(self, flag_key: str, default_value: int,
                                evaluation_context: EvaluationContext | None = None) -> FlagResolutionDetails[int]:
        return self.resolve(flag_key, default_value, evaluation_context, "integer")

    def resolve_float_details(self, flag_key: str, default_value: float,
                              evaluation_context: EvaluationContext | None = None) -> FlagResolutionDetails[float]:
        return self.resolve(flag_key, default_value, evaluation_context, "float")

    def resolve_string_details(self, flag_key: str, default_value: str,
                               evaluation_context: EvaluationContext | None = None) -> FlagResolutionDetails[str]:
        return self.resolve(flag_key, default_value, evaluation_context, "string")

    def resolve_object_details(
        self, flag_key: str, default_value: Sequence[FlagValueType] | Mapping[str, FlagValueType],
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[Sequence[FlagValueType] | Mapping[str, FlagValueType]]:
        resolution = self.evaluator.evaluate(flag_key, {}, None)
        kind = resolution.type or "unknown"
        return FlagResolutionDetails(
            default_value, error_code=ErrorCode.TYPE_MISMATCH if resolution.error_code is None
            else _ERRORS[resolution.error_code], reason=Reason.ERROR,
            error_message=f"flag {flag_key!r} is a {kind} flag; aigentflow has no object flags"
            if resolution.error_code is None else resolution.error_message)


def details(resolution: Resolution, default_value: Any) -> FlagResolutionDetails[Any]:
    """A ``Resolution`` as OpenFeature's ``FlagResolutionDetails``."""
    metadata = {"type": resolution.type, "source": resolution.source} if resolution.type else {}
    if resolution.error_code is not None:
        return FlagResolutionDetails(default_value, error_code=_ERRORS[resolution.error_code],
                                     error_message=resolution.error_message, reason=Reason.ERROR,
                                     flag_metadata=metadata)
    return FlagResolutionDetails(resolution.value, reason=_REASONS[resolution.reason], variant=resolution.variant,
                                 flag_metadata=metadata)


def client(provider: AigentflowProvider, domain: str = "aigentflow") -> Any:
    """An OpenFeature client bound to ``provider`` (registered for ``domain`` in the SDK's registry)."""
    from openfeature import api

    api.set_provider(provider, domain=domain)
    return api.get_client(domain)


def run_flags(provider: AigentflowProvider, attributes: Mapping[str, str], roles_by_flag: Mapping[str, str]) -> \
        tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """Every flag's value for a run, through the provider's OpenFeature methods: a flag that turns a role
    on (``agents.reviewer``) is evaluated with that role in the context. Returns the values and, for the
    flags the context decided (targeting, split), their variant and reason."""
    resolvers = {"boolean": provider.resolve_boolean_details, "integer": provider.resolve_integer_details,
                 "float": provider.resolve_float_details, "string": provider.resolve_string_details}
    targeting_key = attributes.get("user")
    values: dict[str, Any] = {}
    decided: dict[str, dict[str, Any]] = {}
    for key, definition in provider.evaluator.definitions.items():
        role = roles_by_flag.get(key)
        context = EvaluationContext(targeting_key, {**attributes, "role": role} if role else dict(attributes))
        result = resolvers[definition.type](key, definition.default, context)
        values[key] = result.value
        if result.reason in (Reason.TARGETING_MATCH, Reason.SPLIT):
            decided[key] = {"variant": result.variant, "reason": str(result.reason)}
    return values, decided


def resolve_run_flags(paths: Any, config: EffectiveConfig) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """A run's flags through the provider, in the run's context: the configured tenant, the project, the
    current user, and for each role's flag that role (``run_flags``)."""
    from aigentflow.flags.load import default_context, definitions, flag_files
    from aigentflow.roles.registry import project_registry

    provider = AigentflowProvider(Evaluator(definitions(config, flag_files(paths.root))))
    registry = project_registry(paths)
    roles_by_flag = {spec.flag: role for role in registry.roles() if (spec := registry.default(role).spec).flag}
    return run_flags(provider, default_context(config, paths.root), roles_by_flag)
