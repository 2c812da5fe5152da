"""Cost of running a command through the sandbox instead of a plain ``subprocess.run``.

Runs ``true`` and ``python -c pass`` N times each way (after one warm-up that also probes the
machine's isolation) in a temporary root and prints one JSON line: {"benchmark": "sandbox_overhead",
"runs": N, "true_plain_ms": ..., "true_sandbox_ms": ..., "true_ratio": ..., "python_plain_ms": ...,
"python_sandbox_ms": ..., "python_ratio": ..., "confinement": "bwrap", "isolation": {...}} (medians of
wall time). ``confinement`` is how the commands' filesystem was confined ("bwrap", or "unconfined").

``python benchmarks/sandbox_overhead.py [--runs 20] [--disable filesystem]`` (a few seconds, no Ray);
``--disable`` turns a layer off (namespaces, cgroups, filesystem) to measure what it costs, running
unconfined if needs be.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from statistics import median

from aigentflow.sandbox import DISABLE_CHOICES, Sandbox


def median_ms(action: Callable[[], object], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return round(median(times) * 1000, 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--disable", action="append", default=[], choices=sorted(DISABLE_CHOICES))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="aigentflow-bench-") as root:
        sandbox = Sandbox(Path(root), disable=args.disable, allow_unconfined=bool(args.disable))
        sandbox.run(["true"])  # probes isolation once; not timed
        result: dict[str, object] = {"benchmark": "sandbox_overhead", "runs": args.runs}
        for name, argv in (("true", ["true"]), ("python", [sys.executable, "-c", "pass"])):
            plain = median_ms(
                partial(subprocess.run, argv, cwd=root, capture_output=True, check=False), args.runs
            )
            boxed = median_ms(partial(sandbox.run, argv), args.runs)
            result |= {
                f"{name}_plain_ms": plain,
                f"{name}_sandbox_ms": boxed,
                f"{name}_ratio": round(boxed / plain, 2),
            }
        isolation = sandbox.isolation()
        result["confinement"] = isolation["filesystem"]
        result["isolation"] = isolation
    print(json.dumps(result))


if __name__ == "__main__":
    main()
