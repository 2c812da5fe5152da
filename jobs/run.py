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


def main(argv: list[str] | None = None) -> int:
    """Check the run, attach to the cluster, record the run, drive it (``aigentflow.launch``, as
    `aigentflow run` does); returns the process exit code."""
    arguments = parse_arguments(argv)
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    from aigentflow.exceptions import AigentflowError
    from aigentflow.launch.driver import start_run
    from aigentflow.project.paths import locate_project

    try:
        paths = locate_project(arguments.project)
        overrides = {"model.name": arguments.model} if arguments.model else {}
        outcome = start_run(paths, arguments.request, overrides)
    except AigentflowError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return exc.exit_code
    if outcome.exit_code == 0:
        print(f"Run {outcome.run_id} {outcome.state}. Outputs: {paths.run_dir(outcome.run_id)}", flush=True)
    else:
        print(f"Run {outcome.run_id} stopped in {outcome.state}: {outcome.error}", file=sys.stderr, flush=True)
    return outcome.exit_code


if __name__ == "__main__":
    sys.exit(main())
