"""Who is calling: ``Authorization: Bearer <token>`` on every ``/v1/`` path but the OpenAPI document.

An ASGI middleware, so that it runs before anything reads the request (a malformed body from someone
without a token gets 401, not a 422 describing the API's fields) and no route can be added without it.
Any failure (no header, another scheme, a malformed, unknown, wrong or revoked token) is the same 401 with
the same body and ``WWW-Authenticate: Bearer``: the caller learns nothing about which. While the
single-tenant switch is on (``aigentflow.tenants.mode``), a token of any tenant but the operator's gets
503 saying so. The token is never logged or stored: only its hash is compared (``aigentflow.tenants.tokens``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse

PUBLIC_PATHS = frozenset({"/v1/openapi.json"})
TENANT_KEY = "aigentflow.tenant"
"""Where the middleware leaves the caller's tenant in the ASGI scope (``caller_tenant`` reads it)."""
TOKEN_ID_KEY = "aigentflow.token_id"
"""And the id of the token it came with (what the audit names: never the token)."""
UNAUTHORIZED = {"detail": "unauthorized: send a valid API token as `Authorization: Bearer <token>`"}
SINGLE_TENANT = ("single-tenant mode is on (`aigentflow admin emergency --single-tenant-mode`): only the operator "
                 "tenant's tokens are served until it is lifted; retry later.")


def bearer_token(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The token of the request's one ``Authorization: Bearer`` header, or None."""
    values = [value for name, value in headers if name.lower() == b"authorization"]
    if len(values) != 1:
        return None
    try:
        scheme, _, token = values[0].decode("ascii").partition(" ")
    except UnicodeDecodeError:
        return None
    token = token.strip()
    if scheme.lower() != "bearer" or not token or " " in token:
        return None
    return token


def identify(database: Path, token: str) -> tuple[int, Any]:
    """(200, its record) for an active token; (503, None) if its tenant is not served now; (401, None) else."""
    from aigentflow.store.sqlite import SQLiteRunStore
    from aigentflow.tenants.mode import DEFAULT_TENANT, single_tenant_mode
    from aigentflow.tenants.tokens import TokenStore

    with TokenStore(database, migrate=False) as tokens:  # `aigentflow serve` migrated the database at its start
        record = tokens.authenticate(token)
    if record is None:
        return 401, None
    if record.tenant_id != DEFAULT_TENANT:
        with SQLiteRunStore(database, readonly=True) as store:
            if single_tenant_mode(store):
                return 503, None
    return 200, record


class BearerAuth:
    """The middleware: sets ``scope[TENANT_KEY]`` for an authenticated request, answers 401/503 otherwise."""

    def __init__(self, app: Any, database: Path) -> None:
        self.app = app
        self.database = database

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].startswith("/v1/") or scope["path"] in PUBLIC_PATHS:
            await self.app(scope, receive, send)
            return
        token = bearer_token(scope.get("headers", []))
        status, record = (401, None) if token is None else await run_in_threadpool(identify, self.database, token)
        if status == 401:
            response = JSONResponse(UNAUTHORIZED, status_code=401, headers={"WWW-Authenticate": "Bearer"})
        elif status == 503:
            response = JSONResponse({"detail": SINGLE_TENANT}, status_code=503, headers={"Retry-After": "60"})
        else:
            scope[TENANT_KEY], scope[TOKEN_ID_KEY] = record.tenant_id, record.id
            await self.app(scope, receive, send)
            return
        await response(scope, receive, send)


def caller_tenant(request: Any) -> str:
    """The tenant the middleware authenticated (a route outside the middleware's paths has none)."""
    tenant = request.scope.get(TENANT_KEY)
    if not tenant:  # never: every /v1/ route is behind the middleware
        raise RuntimeError("no authenticated tenant on this request")
    return str(tenant)
