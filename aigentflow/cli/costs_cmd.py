"""``aigentflow costs``: what the model calls cost, by run, tenant, model or step (from the store only)."""

from __future__ import annotations

from typing import Annotated

import typer

from aigentflow.cli.common import print_json, reports_errors


@reports_errors
def costs(
    by: Annotated[str, typer.Option("--by", help="Group by run, tenant, model or step.")] = "run",
    run_id: Annotated[str | None, typer.Option("--run", help="Only this run (id or unique prefix).")] = None,
    tenant: Annotated[str | None, typer.Option("--tenant", help="Only this tenant.")] = None,
    json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """What model calls cost: calls, tokens and USD by run, tenant, model or step.

    Every attempt counts (a failed call was paid too); replayed calls cost 0 (nothing was paid). Prices:
    litellm's cost map, or a configured model's own."""
    from aigentflow.cli.plain import echo, table
    from aigentflow.project.paths import locate_project
    from aigentflow.store.sqlite import SQLiteRunStore

    store = SQLiteRunStore(locate_project().database, readonly=True)
    try:
        rows = store.costs(by, tenant_id=tenant, run_id=store.resolve_run_id(run_id) if run_id else None)
    finally:
        store.close()
    total = round(sum(r["cost_usd"] for r in rows), 9)
    if json_out:
        print_json({"by": by, "rows": rows, "total_cost_usd": total})
        return
    keys = {"run": ["run_id", "tenant_id"], "tenant": ["tenant_id", "runs"], "model": ["model", "provider"],
            "step": ["run_id", "step"]}[by]
    echo(table([k.upper() for k in keys] + ["CALLS", "TOKENS IN", "TOKENS OUT", "COST"],
               [[str(r[k]) for k in keys] + [str(r["model_calls"]), str(r["input_tokens"]), str(r["output_tokens"]),
                                             f"${r['cost_usd']:.6f}"] for r in rows]))
    echo(f"Total: ${total:.6f}")
