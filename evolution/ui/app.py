"""The web UI of one project: a FastAPI app of server-rendered pages (Jinja2), refreshed in parts by htmx.

Pages: ``/`` the runs, ``/runs/<id>`` one run's spans as a waterfall, ``/runs/<id>/spans/<span>`` a
span's details, ``/dashboards`` the health dashboards, ``/findings`` the pattern miner's findings
(``?tenant=T``: one tenant's),
``/leaderboard`` the tournament ratings with each role's promotion and rollout (shadow, canary) stage,
``/compliance`` the SOC 2 controls' states and the compliance score (as `aigentflow compliance status`).
Every page shows a banner of the emergency switches that are on (``aigentflow admin emergency``).
A request from htmx (``HX-Request`` header) gets the fragment it swaps in; any other the whole page.
An unknown run, span or address is a 404 page that says what was not found.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.exceptions import HTTPException as StarletteHTTPException

from aigentflow.project.paths import ProjectPaths
from evolution.ui import views

HERE = Path(__file__).parent
HTMX = "htmx-4.0.1.min.js"
LATENCY_TTL_S = 120.0
"""How long a CLI latency measurement is shown before the next page load measures again."""


@dataclass
class UiState:
    """Per app (not module globals): the project and the last CLI latency measurement."""

    paths: ProjectPaths
    latency: tuple[float, list[float]] | None = None
    started: float = field(default_factory=time.time)


def create_app(paths: ProjectPaths) -> FastAPI:
    """The app serving ``paths``'s project."""
    app = FastAPI(title="aigentflow", docs_url=None, redoc_url=None, openapi_url=None)
    state = UiState(paths)
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.filters["plain"] = views.plain_text
    templates.env.globals.update(htmx=HTMX, project=paths.root.name, project_root=str(paths.root))
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    def page(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        context.setdefault("switches", views.emergency_switches(state.paths))
        return templates.TemplateResponse(request, name, context, status_code=status_code)

    def fragment_wanted(request: Request) -> bool:
        return request.headers.get("hx-request", "").lower() == "true"

    def not_found(request: Request, message: str) -> HTMLResponse:
        return page(request, "not_found.html", status_code=404, message=message, title="Not found")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 404:
            return not_found(request, f"there is no page at {request.url.path}")
        return page(request, "not_found.html", status_code=exc.status_code, message=str(exc.detail),
                    title=f"Error {exc.status_code}")

    @app.get("/", response_class=HTMLResponse)
    def runs_page(request: Request) -> HTMLResponse:
        rows = views.runs_table(state.paths)
        name = "runs_rows.html" if fragment_wanted(request) else "runs.html"
        return page(request, name, rows=rows, title="Runs")

    @app.get("/runs/{run_id}", response_class=HTMLResponse)
    def run_page(request: Request, run_id: str) -> HTMLResponse:
        try:
            run = views.find_run(state.paths, run_id)
        except views.NotFound as exc:
            return not_found(request, str(exc))
        bars, summary = views.waterfall(views.run_spans(state.paths, run["id"]))
        name = "waterfall.html" if fragment_wanted(request) else "run.html"
        return page(request, name, run=run, bars=bars, summary=summary, title=f"Run {run['id']}",
                    live=run["state"] not in views.TERMINAL)

    @app.get("/runs/{run_id}/spans/{span_id}", response_class=HTMLResponse)
    def span_page(request: Request, run_id: str, span_id: str) -> HTMLResponse:
        try:
            run = views.find_run(state.paths, run_id)
            details = views.span_details(state.paths, run["id"], span_id)
        except views.NotFound as exc:
            return not_found(request, str(exc))
        name = "span_details.html" if fragment_wanted(request) else "span.html"
        return page(request, name, run=run, title=details["span"]["name"], **details)

    @app.get("/dashboards", response_class=HTMLResponse)
    def dashboards_page(request: Request) -> HTMLResponse:
        from evolution.dashboards import compute, load

        data = load(state.paths)
        cached = state.latency and time.time() - state.latency[0] < LATENCY_TTL_S
        phases = compute(data, state.latency[1] if cached else None)
        return page(request, "dashboards.html", phases=phases, data=data, title="Health dashboards",
                    measure_latency=not cached)

    @app.get("/dashboards/cli-latency", response_class=HTMLResponse)
    def latency_card(request: Request) -> HTMLResponse:
        """Times the CLI (a few seconds), then returns the figure's card; the dashboards page loads it."""
        from evolution.dashboards.latency import measure
        from evolution.dashboards.mvp import cli_latency

        has_runs = bool(views.runs_table(state.paths, limit=1))
        samples = measure(state.paths.root, has_runs=has_runs)
        state.latency = (time.time(), samples)
        return page(request, "figure.html", figure=cli_latency(samples))

    @app.get("/findings", response_class=HTMLResponse)
    def findings_page(request: Request, tenant: str | None = None) -> HTMLResponse:
        from aigentflow.exceptions import UsageError
        from evolution.dashboards.findings import load_findings, rows, tenants

        try:
            found = load_findings(state.paths.root, tenant or None)
        except UsageError as exc:
            return page(request, "not_found.html", status_code=400, message=str(exc), title="Bad request")
        return page(request, "findings.html", findings=rows(found), tenant=tenant or None,
                    tenants=tenants(state.paths.root), title="Findings")

    @app.get("/leaderboard", response_class=HTMLResponse)
    def leaderboard_page(request: Request) -> HTMLResponse:
        from evolution.ui.leaderboard import roles

        return page(request, "leaderboard.html", roles=roles(state.paths), title="Leaderboard")

    @app.get("/compliance", response_class=HTMLResponse)
    def compliance_page(request: Request) -> HTMLResponse:
        from aigentflow.compliance.records import connect, evidence_items
        from aigentflow.compliance.status import TARGET, compute
        from aigentflow.exceptions import AigentflowError

        try:
            with connect(state.paths) as conn:
                status, evidence_count = compute(state.paths, conn), len(evidence_items(conn))
        except AigentflowError as exc:
            return page(request, "compliance.html", status=None, problem=str(exc), title="Compliance")
        return page(request, "compliance.html", status=status, target=TARGET, evidence_count=evidence_count,
                    title="Compliance")

    return app
