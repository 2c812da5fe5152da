"""How long `aigentflow incidents detect` takes on a project with many runs.

    python benchmarks/incident_detect.py [--runs 10000] [--recent 500] [--spans-per-run 4]

Builds a throwaway project: ``--runs`` finished runs (10% failed) with 3 steps and 6 audit entries each, of
which ``--recent`` finished in the last hour (the others a week ago: outside every rule's window), and a
trace segment of ``--spans-per-run`` agent/model/command spans per recent run. Rows are bulk-inserted with
SQLite (the store's API writes one synchronous transaction per call: minutes for 10 000 runs); detection
then runs through the CLI as an operator runs it, three times: the first opens incidents, the next find
nothing new. Prints one JSON line (seconds per detection, rows in the store).
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path


def build(root: Path, runs: int, recent: int, spans_per_run: int) -> None:
    from aigentflow.demo import create_sample_project
    from aigentflow.tracing.spans import make_span
    from aigentflow.tracing.writer import SegmentWriter

    repo = create_sample_project(root)
    done = subprocess.run([sys.executable, "-m", "aigentflow", "init"], cwd=repo, capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr
    db = sqlite3.connect(repo / ".aigentflow" / "state.db")
    project = db.execute("SELECT id FROM projects").fetchone()[0]
    now = datetime.now(UTC)
    run_rows, step_rows, audit_rows = [], [], []
    for number in range(runs):
        at = (now - timedelta(minutes=number % 50) if number < recent else now - timedelta(days=7)).isoformat(
            timespec="milliseconds")
        run_id = f"bench-{number:06d}"
        state = "FAILED" if number % 10 == 0 else "COMPLETED"
        run_rows.append((run_id, "default", project, "r", "replay", state, 2, at, at, at,
                         "step build failed" if state == "FAILED" else None, "{}", "{}"))
        for step, role in (("analyze", "analyst"), ("plan", "project_manager"), ("build", "backend_developer")):
            status = "failed" if state == "FAILED" and step == "build" else "completed"
            step_rows.append((run_id, step, 1, "default", role, step.upper(), status, None, at, at))
        for event in ("run.created", "agent.started", "model.called", "agent.finished", "model.called",
                      "run.finished"):
            audit_rows.append(("default", run_id, event, at, json.dumps({"role": "analyst", "input_tokens": 120})))
    with db:
        db.executemany("INSERT INTO runs (id, tenant_id, project_id, request, model, state, version, created_at,"
                       " updated_at, finished_at, error, settings_json, flags_json) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                       run_rows)
        db.executemany("INSERT INTO steps (run_id, step, attempt, tenant_id, role, state, status, error, started_at,"
                       " finished_at) VALUES (?,?,?,?,?,?,?,?,?,?)", step_rows)
        db.executemany("INSERT INTO audit (tenant_id, run_id, event, at, data_json) VALUES (?,?,?,?,?)", audit_rows)
    db.close()
    writer = SegmentWriter(repo / ".aigentflow" / "traces", None, flush_every=100_000)
    kinds = ("agent", "model", "command", "state")
    for number in range(recent):
        for index in range(spans_per_run):
            writer.add(make_span(f"s{index}", kinds[index % len(kinds)], run_id=f"bench-{number:06d}",
                                 status="error" if number % 10 == 0 and index == 1 else "ok"))
    writer.flush()
    writer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--recent", type=int, default=500)
    parser.add_argument("--spans-per-run", type=int, default=4)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="incident-bench-") as scratch:
        os.environ["AIGENTFLOW_CONFIG_HOME"] = str(Path(scratch) / "home")
        root = Path(scratch) / "project"
        build(root, args.runs, args.recent, args.spans_per_run)
        seconds, reports = [], []
        for _ in range(3):
            started = time.perf_counter()
            done = subprocess.run([sys.executable, "-m", "aigentflow", "incidents", "detect", "--json"], cwd=root,
                                  capture_output=True, text=True, check=False)
            seconds.append(round(time.perf_counter() - started, 3))
            assert done.returncode == 0, done.stderr
            reports.append(json.loads(done.stdout))
        print(json.dumps({"runs": args.runs, "recent_runs": args.recent, "steps": args.runs * 3,
                          "audit_entries": args.runs * 6, "spans": args.recent * args.spans_per_run,
                          "detect_wall_s": seconds, "detect_inside_s": [r["seconds"] for r in reports],
                          "opened": len(reports[0]["opened"]),
                          "opened_after": [len(r["opened"]) for r in reports[1:]]}))


if __name__ == "__main__":
    main()
