"""Ray job entrypoint: carry one feature request through the agent team on the job's cluster.

    ray job submit --working-dir . -- python jobs/run.py "<request>" [--project PATH] [--model M]

Inside a Ray job, RAY_ADDRESS names the job's cluster, and `connect_ray(None)` attaches to it (as
`ray.init()` does). Exits with the run's exit code: 0 completed, 1 failed, 2 bad input, 3 paused.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path


def parse_arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Run a feature request with aigentflow on this Ray cluster.")
    parser.add_argument("request", help="the feature request, in plain words")
    parser.add_argument("--project", type=Path, default=Path.cwd(),
                        help="a directory inside the initialised git repository (default: the working directory)")
    parser.add_argument("--model", help="litellm model name, e.g. openai/gpt-4o-mini or replay/demo")
    return parser.parse_args(argv)


def progress(message: str) -> None:
    print(message, flush=True)


def main(argv: list[str] | None = None) -> int:
    """Create the run, attach to the cluster, drive the run; returns the process exit code."""
    arguments = parse_arguments(argv)
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    from aigentflow.cluster.connect import connect_ray
    from aigentflow.exceptions import AigentflowError
    from aigentflow.project.paths import locate_project
    from aigentflow.run.runner import create_run, drive, engine_options

    try:
        paths = locate_project(arguments.project)
        overrides = {"model.name": arguments.model} if arguments.model else {}
        run, spec = create_run(paths, arguments.request, overrides)
        progress(f"Run {run.id}: {run.request[:100]}")
        if spec.lenient:
            from aigentflow.models.spec import LENIENT_NOTICE

            progress(f"warning: {LENIENT_NOTICE}.")
        progress(f"Model {spec.name}; attaching to Ray at {os.environ.get('RAY_ADDRESS') or 'a new local instance'}...")
        connect_ray(None)
        outcome = drive(paths, run, engine_options(run, spec), resume=False, show=progress)
    except AigentflowError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return exc.exit_code
    if outcome.exit_code == 0:
        progress(f"Run {outcome.run_id} {outcome.state}. Outputs: {paths.run_dir(outcome.run_id)}")
    else:
        print(f"Run {outcome.run_id} stopped in {outcome.state}: {outcome.error}", file=sys.stderr, flush=True)
    return outcome.exit_code


if __name__ == "__main__":
    sys.exit(main())
