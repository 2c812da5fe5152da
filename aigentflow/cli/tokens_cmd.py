"""`aigentflow tokens create|list|revoke`: the HTTP API's bearer tokens (``aigentflow.tenants.tokens``).

A token is printed once, by ``create``; nothing shows it again (the database keeps its hash only). None of
these import Ray or litellm."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from aigentflow.cli.common import print_json, reports_errors

app = typer.Typer(help="API tokens for `aigentflow serve`: create (shown once), list, revoke.", no_args_is_help=True)

Json = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _tokens() -> Any:
    from aigentflow.project.paths import locate_project
    from aigentflow.tenants.tokens import TokenStore

    return TokenStore(locate_project().database)


@app.command()
@reports_errors
def create(
    tenant: Annotated[str, typer.Argument(help="The tenant the token acts for (e.g. default).")],
    name: Annotated[str, typer.Option("--name", help="What the token is for (shown by `tokens list`).")] = "",
    json_out: Json = False,
) -> None:
    """Create a token for TENANT and print it, once: store it now, it cannot be shown again."""
    with _tokens() as tokens:
        record, token = tokens.create(tenant, name)
    if json_out:
        print_json({**record.to_dict(), "token": token})
        return
    typer.echo(token)
    typer.echo(f"token {record.id} for tenant {record.tenant_id}"
               + (f" ({record.name})" if record.name else "")
               + ": shown once, store it now; send it as `Authorization: Bearer <token>`.", err=True)


@app.command("list")
@reports_errors
def list_tokens(
    tenant: Annotated[str | None, typer.Option("--tenant", help="Only this tenant's tokens.")] = None,
    json_out: Json = False,
) -> None:
    """The tokens (never the tokens themselves): id, tenant, name, created, last used, revoked."""
    from aigentflow.cli.plain import table

    with _tokens() as tokens:
        found = tokens.list(tenant)
    if json_out:
        print_json([record.to_dict() for record in found])
        return
    if not found:
        typer.echo("no API tokens" + (f" for tenant {tenant}" if tenant else "")
                   + "; `aigentflow tokens create TENANT` makes one.")
        return
    typer.echo(table(["ID", "TENANT", "NAME", "CREATED", "LAST USED", "REVOKED"],
                     [[r.id, r.tenant_id, r.name or "-", r.created_at[:19], (r.last_used_at or "never")[:19],
                       (r.revoked_at or "-")[:19]] for r in found], flexible=[2]))


@app.command()
@reports_errors
def revoke(
    token_id: Annotated[str, typer.Argument(help="The token's id (`aigentflow tokens list`).")],
    json_out: Json = False,
) -> None:
    """Revoke a token: from now on it gets 401."""
    with _tokens() as tokens:
        record, changed = tokens.revoke(token_id)
    if json_out:
        print_json({**record.to_dict(), "changed": changed})
        return
    if changed:
        typer.echo(f"token {record.id} of tenant {record.tenant_id} revoked")
    else:
        typer.echo(f"token {record.id} of tenant {record.tenant_id} was already revoked at {record.revoked_at}")
