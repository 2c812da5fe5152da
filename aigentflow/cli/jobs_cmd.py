"""`aigentflow submit run` and `aigentflow jobs list|logs|stop`: runs as Ray jobs on a cluster."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from aigentflow.cli.common import print_json, reports_errors

submit_app = typer.Typer(help="Submit work to a Ray cluster's job server.", no_args_is_help=True)
jobs_app = typer.Typer(help="Follow jobs submitted to a Ray cluster.", no_args_is_help=True)

AddressOption = Annotated[str | None, typer.Option(
    "--address", help="Job server URL, e.g. http://HEAD:8265 (default: $RAY_API_SERVER_ADDRESS or http://127.0.0.1:8265).")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON.")]
EXIT_BY_STATUS = {"SUCCEEDED": 0, "FAILED": 1, "STOPPED": 130}


@submit_app.command("run")
@reports_errors
def submit_run(
    request: Annotated[str, typer.Argument(help="The feature request, in plain words.")],
    address: AddressOption = None,
    project: Annotated[Path, typer.Option(
        help="The project's directory on the head node (default: this one).")] = Path("."),
    model: Annotated[str | None, typer.Option("--model", "-m", help="litellm model name.")] = None,
    sets: Annotated[list[str] | None, typer.Option("--set", "-c", help="Override a config key: KEY=VALUE.")] = None,
    wait: Annotated[bool, typer.Option("--wait/--no-wait", help="Wait for the job and print its log.")] = False,
    timeout: Annotated[float, typer.Option(help="Seconds to wait with --wait.")] = 3600,
    json_out: JsonOption = False,
) -> None:
    """Submit `aigentflow run` as a Ray job; it runs in the project's directory on the head node."""
    from aigentflow.cluster.jobs import client
    from aigentflow.cluster.jobs import submit_run as submit
    from aigentflow.cluster.jobs import wait as wait_for
    from aigentflow.project.paths import find_git_root

    root = find_git_root(project) or project.resolve()
    check_submitted_model(root, model, sets or [])
    job_id = submit(address, str(root), request, model=model, sets=sets or [])
    if not wait:
        if json_out:
            print_json({"job_id": job_id})
        else:
            typer.echo(f"Submitted job {job_id}. Follow it with `aigentflow jobs logs {job_id}`.")
        return
    status = wait_for(address, job_id, timeout)
    typer.echo(client(address).get_job_logs(job_id), nl=False)
    typer.echo(f"Job {job_id} {status}.")
    raise typer.Exit(EXIT_BY_STATUS.get(status, 1))


def check_submitted_model(root: Path, model: str | None, sets: list[str]) -> None:
    """Refuse, before the job server is contacted, a model the job could not call whatever the head
    node's environment: an unknown provider, or a replay cassette that does not exist. Keys are the
    head node's business (the job's `aigentflow run` checks them there and exits 2 at once); no key
    or value of this environment is sent to the cluster."""
    from aigentflow.models.names import check_model_name
    from aigentflow.models.preflight import check_models
    from aigentflow.project.paths import ProjectPaths

    paths = ProjectPaths(root)
    if paths.state_dir.is_dir():  # the project is here too: its config and cassettes are the job's
        from aigentflow.cli.run_cmd import _overrides
        from aigentflow.config.loader import load_config

        settings = load_config(root, _overrides(model, None, sets)).settings
        name = settings.model.name
        if name not in settings.models:  # a configured model: the name is known, its keys are the head's
            check_models([name], paths.cassettes_dir, keys=False)
    elif model:  # a project on the head node only: the name is all there is to check
        check_model_name(model)


@jobs_app.command("list")
@reports_errors
def list_jobs(address: AddressOption = None, json_out: JsonOption = False) -> None:
    """The cluster's jobs, newest first."""
    from aigentflow.cluster.jobs import client, describe

    jobs = sorted((describe(j) for j in client(address).list_jobs()), key=lambda j: j["start_time"] or 0, reverse=True)
    if json_out:
        print_json(jobs)
        return
    if not jobs:
        typer.echo("No jobs on this cluster yet; submit one with `aigentflow submit run \"<request>\"`.")
    for job in jobs:
        typer.echo(f"{job['job_id']}  {job['status']:<9}  {job['entrypoint'][:90]}")


@jobs_app.command("logs")
@reports_errors
def logs(job_id: Annotated[str, typer.Argument(help="The job's id.")], address: AddressOption = None) -> None:
    """A job's log so far."""
    from aigentflow.cluster.jobs import client
    from aigentflow.exceptions import UsageError

    jobs = client(address)
    try:
        typer.echo(jobs.get_job_logs(job_id), nl=False)
    except RuntimeError as exc:
        raise UsageError(f"no job {job_id!r} on this cluster ({str(exc)[:200]}); "
                         "`aigentflow jobs list` lists them.") from None


@jobs_app.command("stop")
@reports_errors
def stop(job_id: Annotated[str, typer.Argument(help="The job's id.")], address: AddressOption = None) -> None:
    """Stop a job. The run it drives is left resumable (`aigentflow resume` on the head node)."""
    from aigentflow.cluster.jobs import client
    from aigentflow.exceptions import UsageError

    try:
        stopped = client(address).stop_job(job_id)
    except RuntimeError as exc:
        raise UsageError(f"no job {job_id!r} on this cluster ({str(exc)[:200]}); "
                         "`aigentflow jobs list` lists them.") from None
    typer.echo(f"Job {job_id} {'is stopping' if stopped else 'had already ended'}.")
