"""``aigentflow models``: the configured providers and models, and whether each can be called.

Quick and offline (no Ray, no litellm): keys are checked by their variables' presence (never printed),
prices come from litellm's cost map file (``aigentflow.models.catalog``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from aigentflow.cli.common import print_json, reports_errors

app = typer.Typer(help="Model providers and models: list them, check they can be called.", no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


def _settings() -> tuple[Any, Path | None]:
    from aigentflow.config.loader import load_config
    from aigentflow.project.paths import ProjectPaths, find_git_root

    root = find_git_root(Path.cwd())
    cassettes = ProjectPaths(root).cassettes_dir if root else None
    return load_config(root).settings, cassettes


@app.command("list")
@reports_errors
def list_models(as_json: JsonOption = False) -> None:
    """Providers (type, endpoint, key variable and whether it is set) and models (price per 1k tokens)."""
    from aigentflow.models.catalog import describe

    settings, _ = _settings()
    report = {"default_model": settings.model.name, **describe(settings)}
    if as_json:
        print_json(report)
        return
    from aigentflow.cli.plain import echo, table

    echo(f"Runs' model (model.name): {report['default_model']}")
    if not report["providers"]:
        echo("No providers configured (providers.<name> in .aigentflow/config.toml); any litellm name works as "
             "model.name.")
        return
    echo(table(["PROVIDER", "TYPE", "API BASE", "KEY VARIABLE"],
               [[p["name"], p["type"], p["api_base"], (p["key_env"] + (" (set)" if p["key_set"] else " (NOT SET)"))
                 if p["key_env"] else "(none needed)"] for p in report["providers"]], title="Providers"))
    echo(table(["MODEL", "PROVIDER", "LITELLM", "IN $/1K", "OUT $/1K", "TAGS", "FALLBACKS"],
               [[m["name"], m["provider"], m["litellm_model"], _price(m["input_per_1k_usd"], m["price_source"]),
                 _price(m["output_per_1k_usd"], m["price_source"]), ", ".join(m["tags"]) or "-",
                 ", ".join(m["fallbacks"]) or "-"] for m in report["models"]], title="Models"))
    for number, rule in enumerate(report["rules"]):
        target = rule["model"] or f"tags {rule['require']}, prefer {rule['prefer']}"
        echo(f"routing.rules[{number}]: role {rule['role']}, task {rule['task']} -> {target}")


def _price(value: float, source: str) -> str:
    return "unpriced" if source == "unpriced" else f"{value:.6f}" + (" (config)" if source == "config" else "")


@app.command("check")
@reports_errors
def check(names: Annotated[list[str] | None, typer.Argument(help="Models to check (default: every configured "
                                                                     "one, the run's model and the routes).")] = None,
          as_json: JsonOption = False) -> None:
    """Whether each model can be called from here: its name known, its provider's key set (and its
    fallbacks'). Exit 2 naming what is wrong (an unknown model, an unset key variable)."""
    from aigentflow.exceptions import UsageError
    from aigentflow.models.names import build_model_spec
    from aigentflow.models.routing import targets

    settings, cassettes = _settings()
    wanted = list(names or [settings.model.name, *settings.models, *targets(settings)])
    results = []
    for name in dict.fromkeys(wanted):
        try:
            spec = build_model_spec(settings.model.model_copy(update={"name": name}), cassettes, settings=settings)
            results.append({"model": name, "ok": True, "route": [d.name for d in spec.deployments] or [name]})
        except UsageError as exc:
            results.append({"model": name, "ok": False, "problem": str(exc)})
    if as_json:
        print_json({"models": results, "ok": all(r["ok"] for r in results)})
    else:
        from aigentflow.cli.plain import echo

        for r in results:
            echo(f"{r['model']}: " + ("ok (" + " -> ".join(r["route"]) + ")" if r["ok"] else r["problem"]))
    if not all(r["ok"] for r in results):
        raise typer.Exit(2)
