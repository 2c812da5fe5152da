"""`aigentflow cluster up|status|down` and `aigentflow dashboard`: a local Ray head that runs reuse.

Exit codes: `status` and `down` exit 0 whether or not a cluster runs (`down` with nothing to stop
says so); `dashboard` exits 2 when there is no cluster to show. Only `up` imports Ray's machinery
(it runs `ray start`); `status` and `dashboard` read the state file and probe a port.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from aigentflow.cli.common import print_json, reports_errors

app = typer.Typer(help="Start and stop a local Ray head so that runs connect in about a second.",
                  no_args_is_help=True)

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
RAY_DEFAULT_DASHBOARD_PORT = 8265
START_HINT = "start one with `aigentflow cluster up`"


def _token_hint() -> str:
    token = Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")
    return f" If it asks for a token, it is the one in {token}." if token.exists() else ""


@app.command()
@reports_errors
def up(
    port: Annotated[int | None, typer.Option(help="GCS port (default: a free one).")] = None,
    dashboard_port: Annotated[int | None, typer.Option(help="Dashboard port (default: a free one).")] = None,
    num_cpus: Annotated[int | None, typer.Option(help="CPUs Ray may schedule (default: all).")] = None,
    dashboard: Annotated[bool, typer.Option(help="Start Ray's dashboard.")] = True,
    temp_dir: Annotated[Path | None, typer.Option(help="Ray's --temp-dir (default: Ray's own, /tmp/ray).")] = None,
    json_out: JsonOption = False,
) -> None:
    """Start a Ray head on 127.0.0.1 (or report the one already running)."""
    from aigentflow.cluster import head as cluster
    already = cluster.status()
    started = time.monotonic()
    info = cluster.up(port=port, dashboard_port=dashboard_port, num_cpus=num_cpus,
                      include_dashboard=dashboard, temp_dir=temp_dir)
    reused = already is not None and already.running
    seconds = round(time.monotonic() - started, 2)
    if json_out:
        print_json({**info.to_dict(), "already_running": reused, "seconds": 0 if reused else seconds})
        return
    where = f" (dashboard {info.dashboard_url})" if info.dashboard_url else ""
    if reused:
        ignored = " The options you gave were not used: `aigentflow cluster down` first to change them." \
            if port or dashboard_port or num_cpus or temp_dir else ""
        typer.echo(f"A Ray head is already running at {info.gcs_address}{where}.{ignored}")
    else:
        typer.echo(f"Started a Ray head at {info.gcs_address} in {seconds:.1f} s{where}.")
    typer.echo(f"`aigentflow run` now connects to {info.gcs_address}; stop it with `aigentflow cluster down`.")


@app.command()
@reports_errors
def status(json_out: JsonOption = False) -> None:
    """Whether the cluster started by `aigentflow cluster up` is running, and where."""
    from aigentflow.cluster import head as cluster
    info = cluster.status()
    if json_out:
        print_json(info.to_dict() if info else {"running": False})
    elif info is None:
        typer.echo(f"No cluster is running: {START_HINT}.")
    elif not info.running:
        typer.echo(f"The cluster recorded at {info.gcs_address} is not running any more: {START_HINT}.")
    else:
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(info.started_at))
        typer.echo(f"Running at {info.gcs_address} since {since} (session {info.session_id}).")
        typer.echo(f"Dashboard: {info.dashboard_url or 'none (started with --no-dashboard)'}")
        typer.echo(f"Logs: {info.log_file} and {info.temp_dir}/session_latest/logs. "
                   "Stop it with `aigentflow cluster down`.")


@app.command()
@reports_errors
def down(json_out: JsonOption = False) -> None:
    """Stop the cluster started by `aigentflow cluster up` (and nothing else)."""
    from aigentflow.cluster import head as cluster
    info = cluster.status()
    stopped = cluster.down()
    if json_out:
        print_json({"stopped": stopped, "gcs_address": info.gcs_address if info else None})
    elif stopped and info is not None:
        typer.echo(f"Stopped the Ray head at {info.gcs_address}; `aigentflow run` starts Ray by itself again.")
    else:
        typer.echo(f"No cluster was running, nothing to stop; {START_HINT}.")


def _describe_address(target: str) -> dict[str, Any]:
    """What can be told about a cluster given by address, without Ray: where its dashboard answers."""
    from aigentflow.cluster.head import http_status
    from aigentflow.exceptions import UsageError

    if target.startswith(("http://", "https://")):
        url, guessed = target.rstrip("/"), False
    else:
        host = target.split("://")[-1].rstrip("/").rsplit(":", 1)[0]
        url, guessed = f"http://{host}:{RAY_DEFAULT_DASHBOARD_PORT}", True
    if http_status(url) is None:
        how = f" (Ray's default dashboard port for the cluster at {target})" if guessed else ""
        raise UsageError(f"no dashboard answers at {url}{how}; check the address (`ray status` on its head "
                         f"node), or leave --address and RAY_ADDRESS out to use the local cluster.")
    return {"dashboard_url": url, "gcs_address": None if guessed or "://" in target else target,
            "source": "default port of --address/RAY_ADDRESS" if guessed else "--address/RAY_ADDRESS"}


@reports_errors
def dashboard(
    address: Annotated[str | None, typer.Option(help="A cluster's GCS address or dashboard URL "
                                                "(default: RAY_ADDRESS, else the local cluster).")] = None,
    json_out: JsonOption = False,
) -> None:
    """Print the URL of the Ray dashboard of the local cluster (or of --address)."""
    from aigentflow.cluster import head as cluster
    from aigentflow.exceptions import UsageError

    target = address or os.environ.get("RAY_ADDRESS")
    info = cluster.status()
    local = info if info is not None and info.running else None
    if target and (local is None or target.split("://")[-1].rstrip("/") != local.gcs_address):
        report = _describe_address(target)
    elif local is None:
        raise UsageError(f"no local Ray cluster is running, so there is no dashboard; {START_HINT} "
                         "(or pass --address of a running cluster).")
    elif local.dashboard_url is None:
        raise UsageError(f"the cluster at {local.gcs_address} was started with --no-dashboard; restart it "
                         "with `aigentflow cluster down` then `aigentflow cluster up`.")
    else:
        report = {"dashboard_url": local.dashboard_url, "gcs_address": local.gcs_address,
                  "source": "aigentflow cluster up"}
    if json_out:
        print_json(report)
    else:
        typer.echo(f"Ray dashboard: {report['dashboard_url']}")
        typer.echo(f"Open it in a browser.{_token_hint()}")
