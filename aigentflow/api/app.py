"""The HTTP API (FastAPI): a project's runs, as each tenant sees its own, behind bearer tokens.

``create_app(paths)`` is what ``aigentflow serve`` serves and what the tests drive. Every ``/v1/`` route but
``/v1/openapi.json`` is behind ``auth.BearerAuth``; every read goes through ``reads`` as the caller's
tenant, so another tenant's run and a run that does not exist are the same 404.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from aigentflow.api import schemas
from aigentflow.api.auth import TOKEN_ID_KEY, BearerAuth, caller_tenant
from aigentflow.api.reads import NotFound, TenantReads, open_reads
from aigentflow.api.submit import Submitter, refusal_status
from aigentflow.exceptions import StoreError
from aigentflow.project.paths import ProjectPaths
from aigentflow.store.records import RunRecord

API_VERSION = "v1"
TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED"})
MAX_WAIT_S = 60.0
"""Longest a long-poll of ``/events`` waits for a new event."""
EVENT_POLL_S = 0.25
NOT_FOUND = {"detail": "no such run"}
log = logging.getLogger("aigentflow.api")


def create_app(paths: ProjectPaths, submitter: Submitter | None = None) -> FastAPI:
    """The API of the project at ``paths`` (its state database must exist)."""
    from aigentflow import __version__

    app = FastAPI(title="aigentflow", version=__version__, openapi_url=f"/{API_VERSION}/openapi.json",
                  docs_url=None, redoc_url=None,
                  description="Submit and follow a project's runs; read their steps, audit and costs. "
                              "Every call but this document needs `Authorization: Bearer <token>` "
                              "(`aigentflow tokens create TENANT`).")
    from aigentflow.tenants.tokens import TokenStore

    TokenStore(paths.database).close()  # the schema up to date before the first request (the auth reads tokens)
    app.add_middleware(BearerAuth, database=paths.database)
    runs = submitter or Submitter(paths)

    async def read(tenant: str, action: Any) -> Any:
        """``action(reads)`` on a worker thread (SQLite blocks), as ``tenant``."""
        def work() -> Any:
            with open_reads(paths.database, tenant) as reads:
                return action(reads)

        return await run_in_threadpool(work)

    @app.exception_handler(NotFound)
    async def _not_found(request: Request, exc: NotFound) -> JSONResponse:
        return JSONResponse(NOT_FOUND, status_code=404)

    @app.exception_handler(StoreError)
    async def _store_error(request: Request, exc: StoreError) -> JSONResponse:
        log.warning("run store unavailable: %s", exc)
        return JSONResponse({"detail": "the run store is unavailable (busy or being upgraded); retry shortly"},
                            status_code=503, headers={"Retry-After": "5"})

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": list(e.get("loc", ())), "msg": e.get("msg", "")} for e in exc.errors()]
        said = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:]) or e['loc'][0]}: {e['msg']}" for e in errors)
        return JSONResponse({"detail": f"invalid request: {said}", "errors": errors}, status_code=422)

    @app.post(f"/{API_VERSION}/runs", status_code=202, response_model=schemas.Submitted,
              responses={409: {"description": "The run's checks refused it (message: why)."},
                         429: {"description": "The tenant is over its quota."},
                         504: {"description": "The run was not recorded in time."}})
    async def submit_run(body: schemas.RunSubmission, request: Request) -> Any:
        """Start a run for the caller's tenant; answers once it is recorded (202, its id)."""
        tenant = caller_tenant(request)
        submission = await run_in_threadpool(runs.start, tenant, body.request, body.model, body.overrides())

        def recorded(run_id: str) -> bool:
            with open_reads(paths.database, tenant) as reads:
                return _exists(reads, run_id)

        outcome, message = await runs.wait_recorded(submission, recorded)
        if outcome == "refused":
            return JSONResponse({"detail": message}, status_code=refusal_status(message or ""))
        if outcome == "timeout":
            return JSONResponse({"detail": f"run {submission.run_id} was not recorded within {runs.timeout_s:.0f} s; "
                                           f"it may still start: GET /v1/runs/{submission.run_id}",
                                 "id": submission.run_id}, status_code=504)
        await run_in_threadpool(_audit_submission, paths, tenant, submission.run_id,
                                str(request.scope.get(TOKEN_ID_KEY, "")))
        run = await read(tenant, lambda r: r.get_run(submission.run_id))
        url = f"/{API_VERSION}/runs/{run.id}"
        return JSONResponse(schemas.Submitted(id=run.id, state=run.state, url=url, events=f"{url}/events")
                            .model_dump(), status_code=202, headers={"Location": url})

    @app.get(f"/{API_VERSION}/runs", response_model=schemas.RunList)
    async def list_runs(request: Request, limit: Annotated[int, Query(ge=1, le=500)] = 50) -> Any:
        """The caller's runs, newest first."""
        found, count = await read(caller_tenant(request), lambda r: (r.list_runs(limit), r.count_runs()))
        return schemas.RunList(runs=[_summary(run) for run in found], count=count)

    @app.get(f"/{API_VERSION}/runs/{{run_id}}", response_model=schemas.RunDetail,
             responses={404: {"description": "No such run (for this tenant)."}})
    async def get_run(run_id: str, request: Request) -> Any:
        """One run: its state, steps and costs."""
        run, steps = await read(caller_tenant(request), lambda r: (r.get_run(run_id), r.steps(run_id)))
        return schemas.RunDetail(
            **_summary(run).model_dump(),
            steps=[schemas.Step(step=s.step, attempt=s.attempt, role=s.role, state=s.state, status=s.status,
                                error=s.error, started_at=s.started_at, finished_at=s.finished_at,
                                model_calls=s.model_calls, input_tokens=s.input_tokens,
                                output_tokens=s.output_tokens, cost_usd=s.cost_usd) for s in steps],
            costs=_total(steps),
        )

    @app.get(f"/{API_VERSION}/runs/{{run_id}}/events", response_model=schemas.Events,
             responses={200: {"content": {"text/event-stream": {}},
                              "description": "JSON (long-poll), or Server-Sent Events with Accept: text/event-stream."},
                        404: {"description": "No such run (for this tenant)."}})
    async def run_events(run_id: str, request: Request,
                         since: Annotated[int, Query(ge=0, description="Events after this seq.")] = 0,
                         wait: Annotated[float, Query(ge=0, le=MAX_WAIT_S,
                                                      description="Seconds to wait for a new event.")] = 0) -> Any:
        """The run's events after ``since``: at once, or once one comes (``wait``), or as a stream (SSE)."""
        tenant = caller_tenant(request)
        last = request.headers.get("last-event-id", "")
        first = await read(tenant, lambda r: _events(r, run_id, since))  # 404 before any stream starts
        if "text/event-stream" in request.headers.get("accept", ""):
            start = int(last) if last.isdigit() else since
            return StreamingResponse(_stream(read, tenant, run_id, start), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-store"})
        deadline = time.monotonic() + wait
        while not first.events and not first.terminal and time.monotonic() < deadline:
            await asyncio.sleep(EVENT_POLL_S)
            first = await read(tenant, lambda r: _events(r, run_id, since))
        return first

    @app.get(f"/{API_VERSION}/runs/{{run_id}}/audit", response_model=schemas.AuditLog,
             responses={404: {"description": "No such run (for this tenant)."}})
    async def run_audit(run_id: str, request: Request) -> Any:
        """The run's audit entries, oldest first."""
        entries = await read(caller_tenant(request), lambda r: (r.get_run(run_id), r.audit(run_id))[1])
        return schemas.AuditLog(entries=[_entry(e) for e in entries])

    @app.get(f"/{API_VERSION}/audit", response_model=schemas.AuditLog)
    async def tenant_audit(request: Request) -> Any:
        """The caller's audit entries (its runs', its tokens'), oldest first."""
        entries = await read(caller_tenant(request), lambda r: r.audit())
        return schemas.AuditLog(entries=[_entry(e) for e in entries])

    @app.get(f"/{API_VERSION}/costs", response_model=schemas.Costs)
    async def costs(request: Request,
                    by: Annotated[str, Query(pattern="^(run|step|model)$", description="run, step or model.")]
                    = "run") -> Any:
        """The caller's model calls, tokens and cost: the total, and grouped ``by`` run, step or model."""
        rows = await read(caller_tenant(request), lambda r: r.costs(by))
        for row in rows:
            row.pop("tenant_id", None)
        return schemas.Costs(by=by, total=_sum(rows), rows=rows)

    return app


def _audit_submission(paths: ProjectPaths, tenant: str, run_id: str, token_id: str) -> None:
    """``api.run.submitted``: which token started the run (beside the run's own ``run.created``)."""
    from aigentflow.store.sqlite import SQLiteRunStore

    with SQLiteRunStore(paths.database) as store:
        store.append_audit("api.run.submitted", run_id, {"token_id": token_id}, tenant_id=tenant)


def _exists(reads: TenantReads, run_id: str) -> bool:
    try:
        reads.get_run(run_id)
    except NotFound:
        return False
    return True


def _summary(run: RunRecord) -> schemas.RunSummary:
    return schemas.RunSummary(id=run.id, state=run.state, request=run.request, model=run.model,
                              created_at=run.created_at, updated_at=run.updated_at, finished_at=run.finished_at,
                              error=run.error, model_calls=run.model_calls)


def _sum(rows: list[dict[str, Any]]) -> schemas.Usage:
    return schemas.Usage(model_calls=sum(int(r.get("model_calls") or 0) for r in rows),
                         input_tokens=sum(int(r.get("input_tokens") or 0) for r in rows),
                         output_tokens=sum(int(r.get("output_tokens") or 0) for r in rows),
                         cost_usd=round(sum(float(r.get("cost_usd") or 0) for r in rows), 9))


def _total(steps: list[Any]) -> schemas.Usage:
    return _sum([{"model_calls": s.model_calls, "input_tokens": s.input_tokens, "output_tokens": s.output_tokens,
                  "cost_usd": s.cost_usd} for s in steps])


def _entry(entry: Any) -> schemas.AuditEntry:
    return schemas.AuditEntry(run_id=entry.run_id, event=entry.event, at=entry.at, data=entry.data)


def _events(reads: TenantReads, run_id: str, since: int) -> schemas.Events:
    """The run's log after position ``since``. Positions count the run's own entries (1, 2, ...): the store's
    sequence numbers are shared by every tenant's runs, and their gaps would show how busy the others are."""
    run = reads.get_run(run_id)
    log_entries = reads.transitions(run_id)
    events = [schemas.Event(seq=n, from_state=t.from_state, to_state=t.to_state, event=t.event, reason=t.reason,
                            at=t.at) for n, t in enumerate(log_entries, start=1) if n > since]
    return schemas.Events(run_id=run.id, state=run.state, terminal=run.state in TERMINAL, events=events,
                          next=max(since, len(log_entries)))


async def _stream(read: Any, tenant: str, run_id: str, since: int) -> AsyncIterator[str]:
    """Server-Sent Events: each new event as ``event: transition``, then ``event: end`` once the run is final;
    a comment every 15 s keeps idle connections open."""
    quiet_since = time.monotonic()
    while True:
        try:
            batch = await read(tenant, functools.partial(_events, run_id=run_id, since=since))
        except NotFound:
            return
        for event in batch.events:
            yield f"id: {event.seq}\nevent: transition\ndata: {json.dumps(event.model_dump())}\n\n"
            quiet_since = time.monotonic()
        since = batch.next
        if batch.terminal:
            yield f"event: end\ndata: {json.dumps({'state': batch.state})}\n\n"
            return
        if time.monotonic() - quiet_since > 15:
            yield ": keepalive\n\n"
            quiet_since = time.monotonic()
        await asyncio.sleep(EVENT_POLL_S)
