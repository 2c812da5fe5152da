"""`aigentflow flags`: every feature flag evaluated through OpenFeature for a context, and changes to the
project's flags file (``.aigentflow/flags.toml``), each one audited (`aigentflow audit --event flag.`).

OpenFeature and the config are imported inside the commands: `aigentflow --help` and `status` never load them.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from aigentflow.cli.common import print_json, reports_errors

if TYPE_CHECKING:
    from aigentflow.flags.edit import Change

app = typer.Typer(help="Feature flags: evaluate them for a context, set values, rules, splits and rollouts.",
                  no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]
TenantOption = Annotated[str | None, typer.Option("--tenant", help="Tenant (default: run.tenant).")]
ProjectOption = Annotated[str | None, typer.Option("--project", help="Project (default: the repository's name).")]
RoleOption = Annotated[str | None, typer.Option("--role", help="Agent role, e.g. reviewer (default: none).")]
UserOption = Annotated[str | None, typer.Option(
    "--user", help="User, the subject splits and rollouts stick to (default: AIGENTFLOW_USER or your login).")]
RuleOption = Annotated[list[str] | None, typer.Option(
    "--rule", help="ATTRIBUTE=VALUE[,VALUE...] (tenant, project, role, user); repeat: all must hold.")]

_WHY = {"STATIC": "static", "TARGETING_MATCH": "targeting", "SPLIT": "split", "DEFAULT": "default",
        "ERROR": "error"}


def _root() -> Path | None:
    from aigentflow.project.paths import find_git_root

    return find_git_root(Path.cwd())


def _evaluate(keys: list[str] | None, as_type: str | None, **given: str | None) -> list[dict[str, Any]]:
    """The flags' evaluations through the OpenFeature client, for the context ``given`` completes."""
    from openfeature.evaluation_context import EvaluationContext

    from aigentflow.config.loader import load_config
    from aigentflow.flags.evaluate import Evaluator
    from aigentflow.flags.load import default_context, definitions, flag_files
    from aigentflow.flags.provider import AigentflowProvider, client

    root = _root()
    config = load_config(root)
    evaluator = Evaluator(definitions(config, flag_files(root)))
    attributes = default_context(config, root, **given)
    flags = client(AigentflowProvider(evaluator))
    context = EvaluationContext(attributes.get("user"), attributes)
    getters = {"boolean": (flags.get_boolean_details, False), "integer": (flags.get_integer_details, 0),
               "float": (flags.get_float_details, 0.0), "string": (flags.get_string_details, "")}
    rows = []
    for key in keys if keys is not None else evaluator.keys():
        definition = evaluator.definitions.get(key)
        kind = as_type or (definition.type if definition else "boolean")
        getter, fallback = getters[kind]
        details = getter(key, definition.default if definition and kind == definition.type else fallback, context)
        reason = str(details.reason)
        source = (details.flag_metadata or {}).get("source") or (definition.source if definition else None)
        rows.append({"key": key, "type": definition.type if definition else None, "value": details.value,
                     "variant": details.variant, "reason": reason, "why": _why(reason, details.variant, definition),
                     "source": source,
                     "error_code": str(details.error_code) if details.error_code else None,
                     "error_message": details.error_message, "context": attributes})
    return rows


def _why(reason: str, variant: str | None, definition: Any) -> str:
    if reason == "STATIC":
        source = definition.source
        return "preset" if source.startswith("preset ") else "set" if source.startswith("flags file") else "config"
    return _WHY.get(reason, reason.lower()) + (f" ({variant})" if variant else "")


def _text(value: Any) -> str:
    import json

    from aigentflow.config.loader import display_value

    if value is None:
        return "(unset)"
    return json.dumps(value, sort_keys=True) if isinstance(value, dict) else display_value(value)


@app.command("list")
@reports_errors
def list_command(as_json: JsonOption = False, tenant: TenantOption = None, project: ProjectOption = None,
                 role: RoleOption = None, user: UserOption = None) -> None:
    """Every flag with its type, its value for the context, and why (preset, set, targeting, split, default)."""
    rows = _evaluate(None, None, tenant=tenant, project=project, role=role, user=user)
    if as_json:
        print_json(rows)
        return
    from aigentflow.cli.plain import echo, table

    echo(table(["flag", "type", "value", "why", "source"],
               [[r["key"], r["type"], _text(r["value"]), r["why"], r["source"]] for r in rows], flexible=[4]))


@app.command("get")
@reports_errors
def get_command(
    key: Annotated[str, typer.Argument(help="Flag key, e.g. agents.reviewer.")],
    as_json: JsonOption = False, tenant: TenantOption = None, project: ProjectOption = None,
    role: RoleOption = None, user: UserOption = None,
    as_type: Annotated[str | None, typer.Option(
        "--as", help="Ask for the value as this type (boolean, integer, float, string), as code would.")] = None,
) -> None:
    """One flag's value for a context, its variant and OpenFeature reason."""
    from aigentflow.exceptions import ConfigError
    from aigentflow.flags.definitions import TYPES

    if as_type is not None and as_type not in TYPES:
        raise ConfigError(f"--as {as_type!r} is not one of {', '.join(TYPES)}")
    row = _evaluate([key], as_type, tenant=tenant, project=project, role=role, user=user)[0]
    if row["error_code"]:
        if as_json:
            print_json(row)
        raise ConfigError(f"{row['error_code']}: {row['error_message']}")
    if as_json:
        print_json(row)
        return
    variant = f", variant {row['variant']}" if row["variant"] else ""
    typer.echo(f"{key} = {_text(row['value'])}  ({row['reason']}{variant}; {row['source']})")


def _editor() -> Any:
    from aigentflow.flags.edit import FlagEditor
    from aigentflow.project.paths import locate_project

    return FlagEditor(locate_project(must_exist=True).root)


def _report(change: Change, as_json: bool, note: str | None = None) -> None:
    if as_json:
        print_json({"key": change.key, "change": change.change, "old": change.old, "new": change.new,
                    "file": str(change.file)})
    else:
        typer.echo(f"{change.key} {change.change}: {_text(change.old)} -> {_text(change.new)} ({change.file})")
    if note:
        typer.echo(note, err=True)


@app.command("set")
@reports_errors
def set_command(
    key: Annotated[str, typer.Argument(help="Flag key; a new one needs --type.")],
    value: Annotated[str, typer.Argument(help="Value: true/false, a number or text, as the flag's type.")],
    kind: Annotated[str | None, typer.Option("--type", help="boolean, integer, float or string (new flags).")] = None,
    rule: RuleOption = None,
    description: Annotated[str | None, typer.Option(help="What the flag is for (new flags).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Set a flag's value, or with --rule the value of the subjects a targeting rule matches."""
    editor = _editor()
    if rule:
        if kind is not None or description is not None:
            editor._kind(key, kind)
        _report(editor.set_rule(key, value, rule), as_json)
        return
    change = editor.set_default(key, value, kind, description)
    shadow = editor.shadowed_by(key)
    note = f"note: flags.{key} from {shadow} outranks this value; `aigentflow config unset flags.{key}`" \
        if shadow else None
    _report(change, as_json, note)


@app.command("rollout")
@reports_errors
def rollout_command(
    key: Annotated[str, typer.Argument(help="Flag key.")],
    percent: Annotated[str, typer.Argument(help="Share of subjects, 0-100; raising it keeps those already in.")],
    value: Annotated[str | None, typer.Option(help="The value rolled out (boolean flags: true).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Roll a value out to a percentage of subjects (by a consistent hash of flag and user)."""
    _report(_editor().set_rollout(key, percent, value), as_json)


@app.command("split")
@reports_errors
def split_command(
    key: Annotated[str, typer.Argument(help="Flag key.")],
    weights: Annotated[list[str], typer.Argument(help="VARIANT=WEIGHT each, e.g. classic=50 dark=50.")],
    as_json: JsonOption = False,
) -> None:
    """An A/B split: each subject sticks to one variant (a variant is a value of the flag, or a named variant)."""
    _report(_editor().set_split(key, weights), as_json)


@app.command("unset")
@reports_errors
def unset_command(
    key: Annotated[str, typer.Argument(help="Flag key.")],
    rule: RuleOption = None,
    rollout: Annotated[bool, typer.Option("--rollout", help="Remove only the rollout.")] = False,
    split: Annotated[bool, typer.Option("--split", help="Remove only the split.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Remove a flag's definition from the flags file (or one rule, its rollout or its split)."""
    from aigentflow.exceptions import UsageError

    if sum([bool(rule), rollout, split]) > 1:
        raise UsageError("give one of --rule, --rollout, --split")
    editor = _editor()
    if rule:
        change = editor.remove_rule(key, rule)
    else:
        change = editor.unset(key, "rollout" if rollout else "split" if split else None)
    _report(change, as_json)
