"""`aigentflow patterns mine|list`: the miner on a generated corpus (real SQLite store, real Parquet
segments written by aigentflow's own writer), run as a user runs it, and its bad input."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from evolution.patterns.corpus import generate, score
from evolution.patterns.store import read_findings
from tests.conftest import aigentflow, cli_env


def _mine(project: Path, *args: str) -> dict:
    done = aigentflow("patterns", "mine", "--json", *args, cwd=project)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_mining_a_corpus_finds_the_planted_patterns_and_nothing_else(sample_repo: Path) -> None:
    truth = generate(sample_repo, runs=48, seed=11)
    report = _mine(sample_repo)
    measured = score(report["findings"], truth)
    assert measured["recall"] >= 0.9, measured["missed"]
    assert measured["precision"] >= 0.9, measured["false_positives"]
    kinds = {f["kind"] for f in report["findings"]}
    assert kinds == {"failure", "intervention", "capability_gap", "routing"}
    assert report["tenants"] == ["default"] and {f["tenant_id"] for f in report["findings"]} == {"default"}
    for finding in report["findings"]:
        assert finding["count"] >= 2 and finding["first_seen"] <= finding["last_seen"]
        assert finding["evidence"]["run_ids"], finding
    # Evidence names real spans and runs of this project.
    spans = {f["kind"]: f["evidence"]["span_ids"] for f in report["findings"] if f["evidence"]["span_ids"]}
    shown = aigentflow("trace", report["findings"][0]["evidence"]["run_ids"][0], "--json", cwd=sample_repo)
    assert shown.returncode == 0, shown.stderr
    assert spans  # failures carry span ids
    with sqlite3.connect(sample_repo / ".aigentflow" / "state.db") as db:
        run_ids = {row[0] for row in db.execute("SELECT id FROM runs")}
    assert all(set(f["evidence"]["run_ids"]) <= run_ids for f in report["findings"])

    listed = aigentflow("patterns", "list", "--json", cwd=sample_repo)
    assert listed.returncode == 0, listed.stderr
    stored = json.loads(listed.stdout)["findings"]
    assert {(f["tenant_id"], f["kind"], f["key"]) for f in stored} == \
        {(f["tenant_id"], f["kind"], f["key"]) for f in report["findings"]}
    assert read_findings(sample_repo, "routing") == [f for f in stored if f["kind"] == "routing"]
    table = aigentflow("patterns", "list", cwd=sample_repo)
    assert "frontend tasks succeed" in table.stdout


def test_mining_again_updates_findings_and_keeps_first_seen(sample_repo: Path) -> None:
    generate(sample_repo, runs=24, seed=3)
    first = _mine(sample_repo)
    assert first["stored"]["new"] == len(first["findings"]) > 0
    before = {(f["kind"], f["key"]): f for f in read_findings(sample_repo)}

    again = _mine(sample_repo)
    assert again["stored"] == {"new": 0, "updated": len(before)}
    assert again["facts"]["segments"] == 0  # nothing new to extract

    generate(sample_repo, runs=24, seed=4)  # more runs of the same project
    grown = _mine(sample_repo)
    assert grown["facts"]["segments"] == 24
    after = {(f["kind"], f["key"]): f for f in read_findings(sample_repo)}
    assert set(before) <= set(after)
    for key, old in before.items():
        assert after[key]["first_seen"] == old["first_seen"]
        assert after[key]["count"] >= old["count"] and after[key]["last_seen"] >= old["last_seen"]
        assert after[key]["times_mined"] == 3
    assert any(after[key]["count"] > old["count"] for key, old in before.items())
    assert len(read_findings(sample_repo)) == len(after)  # one row per (kind, key)


def test_since_limits_what_is_mined(sample_repo: Path) -> None:
    generate(sample_repo, runs=24, seed=5)
    future = aigentflow("patterns", "mine", "--since", "2999-01-01", cwd=sample_repo)
    assert future.returncode == 0, future.stderr
    assert future.stdout.strip() == "no findings"
    assert read_findings(sample_repo) == []
    everything = _mine(sample_repo)
    past = _mine(sample_repo, "--since", "2000-01-01")
    assert [(f["kind"], f["key"], f["count"]) for f in past["findings"]] == \
        [(f["kind"], f["key"], f["count"]) for f in everything["findings"]]


def test_an_empty_project_has_no_findings(sample_repo: Path) -> None:
    done = aigentflow("patterns", "mine", cwd=sample_repo)
    assert (done.returncode, done.stdout.strip()) == (0, "no findings")
    listed = aigentflow("patterns", "list", "--json", cwd=sample_repo)
    assert json.loads(listed.stdout) == {"findings": []}


@pytest.mark.parametrize(("args", "says"), [
    (("mine", "--since", "last tuesday"), "is not a date"),
    (("mine", "--since", "2026-13-01"), "is not a date"),
    (("list", "--kind", "bugs"), "is not a kind of finding"),
])
def test_bad_input_is_refused_and_changes_nothing(sample_repo: Path, args: tuple[str, ...], says: str) -> None:
    generate(sample_repo, runs=2, seed=1)
    done = aigentflow("patterns", *args, cwd=sample_repo)
    assert done.returncode == 2
    assert says in done.stderr and "Traceback" not in done.stderr
    assert not (sample_repo / ".aigentflow" / "evolution.db").exists()
    assert not (sample_repo / ".aigentflow" / "evolution").exists()


def test_outside_a_project_it_says_so(tmp_path: Path) -> None:
    done = aigentflow("patterns", "mine", cwd=tmp_path)
    assert done.returncode == 2 and "not inside a git repository" in done.stderr
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    done = aigentflow("patterns", "list", cwd=tmp_path)
    assert done.returncode == 2 and "aigentflow init" in done.stderr
    assert not (tmp_path / ".aigentflow").exists()


def test_patterns_imports_neither_ray_nor_litellm(sample_repo: Path) -> None:
    generate(sample_repo, runs=2, seed=1)
    code = ("import sys\nfrom aigentflow.cli.main import main\nsys.argv = ['aigentflow', 'patterns', 'mine']\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "print('heavy:', sorted(m for m in ('ray', 'litellm') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], cwd=sample_repo, capture_output=True, text=True,
                          env=cli_env(), timeout=120, check=False)
    assert "heavy: []" in done.stdout, done.stdout + done.stderr


def _chat(run_id: str, parent: str, prompt: str, start_ns: int) -> dict:
    from aigentflow.tracing import spans as sp

    return sp.make_span(sp.model_span_name("replay/m"), "model", run_id=run_id, parent_id=parent, start_ns=start_ns,
                        end_ns=start_ns + 10, attributes={sp.AGENT_NAME: "analyst", sp.PROMPT_HASH: prompt})


def test_a_prompt_loop_whose_calls_were_mined_at_different_times_is_found(sample_repo: Path) -> None:
    """Runs still calling the model while the miner runs: their calls of one prompt end up in facts
    extracted at three minings, one call each time, and the third call still makes the loop."""
    from aigentflow.redact import Redactor
    from aigentflow.tracing import spans as sp
    from aigentflow.tracing.writer import SegmentWriter

    traces = sample_repo / ".aigentflow" / "traces"
    runs = {f"260101-12000{n}-abcd": sp.new_span_id() for n in range(2)}
    with SegmentWriter(traces, Redactor.from_environment()) as writer:
        for n, (run_id, agent) in enumerate(runs.items()):
            writer.add(sp.make_span(sp.agent_span_name("analyst"), "agent", run_id=run_id, span_id=agent,
                                    start_ns=1_000 + n,
                                    attributes={sp.AGENT_NAME: "analyst", "aigentflow.step": "analyze"}))
            writer.add(_chat(run_id, agent, f"sha256:{n + 10:064x}", 1_500))  # another prompt, sent once
    for minute in range(3):
        assert not [f for f in _mine(sample_repo)["findings"] if f["details"].get("pattern") == "prompt_loop"]
        with SegmentWriter(traces, Redactor.from_environment()) as writer:
            writer.extend([_chat(run_id, agent, f"sha256:{n:064x}", 2_000 + minute)
                           for n, (run_id, agent) in enumerate(runs.items())])
    (loop,) = [f for f in _mine(sample_repo)["findings"] if f["details"].get("pattern") == "prompt_loop"]
    assert loop["count"] == 2 and sorted(loop["evidence"]["run_ids"]) == sorted(runs)
    assert loop["details"] == {"pattern": "prompt_loop", "role": "analyst", "step_kind": "analyze"}
    assert [f for f in read_findings(sample_repo, "routing") if f["key"] == loop["key"]]
