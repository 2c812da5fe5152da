"""`aigentflow vendors`: the register (seeded, added to, assessed) and SLA monitoring from model-call
spans written through the real trace writer, in temporary git projects, with the CLI as a subprocess."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from aigentflow.project.paths import ProjectPaths
from aigentflow.tracing.spans import REQUEST_MODEL, make_span, model_span_name
from aigentflow.tracing.writer import SegmentWriter
from tests.conftest import aigentflow, cli_env, commit_files


@pytest.fixture
def project(tmp_path: Path, user_config: Path) -> Path:
    return commit_files(tmp_path / "project", {"app.py": "print('hi')\n"})


def run(project: Path, *args: str) -> tuple[int, str, str]:
    result = aigentflow("vendors", *args, cwd=project, timeout=60, env=cli_env())
    return result.returncode, result.stdout, result.stderr


def vendors(project: Path) -> dict[str, dict]:
    code, out, err = run(project, "list", "--json")
    assert code == 0, err
    return {v["id"]: v for v in json.loads(out)["vendors"]}


def test_the_register_is_seeded_with_the_known_vendors_and_the_configured_provider(project: Path) -> None:
    code, out, _ = run(project, "list")
    assert code == 0
    assert "openai       pending   DPA no         SLA 99.9%  US           OpenAI" in out
    assert "(seeded: nothing recorded yet in" in out
    assert list(vendors(project)) == ["openai", "anthropic", "local"]  # the default model is replay: no vendor

    (project / ".aigentflow").mkdir()
    (project / ".aigentflow" / "config.toml").write_text('[model]\nname = "groq/llama-3.1-8b-instant"\n')
    seeded = vendors(project)
    assert list(seeded) == ["openai", "anthropic", "local", "groq"]
    assert seeded["groq"]["source"] == "config" and seeded["groq"]["providers"] == ["groq"]
    assert not (project / ".aigentflow" / "vendors.json").exists()  # nothing written until something is recorded


def test_add_show_and_assess(project: Path) -> None:
    code, out, err = run(project, "add", "github", "--name", "GitHub", "--kind", "service",
                         "--data", "source code", "--data", "pull requests", "--region", "US",
                         "--dpa", "2026-02-01", "--status", "approved", "--sla", "99.95")
    assert code == 0, err
    assert "added github (approved)" in out
    code, out, err = run(project, "assess", "openai", "--status", "approved", "--dpa", "yes", "--by", "sec-team",
                         "--notes", "SOC 2 report reviewed", "--date", "2026-03-04")
    assert (code, out.strip()) == (0, "openai: approved as of 2026-03-04"), err
    code, out, _ = run(project, "show", "openai")
    assert code == 0
    assert "  status:         approved" in out
    assert "  DPA:            yes" in out
    assert "    2026-03-04 approved  by sec-team: SOC 2 report reviewed" in out

    stored = json.loads((project / ".aigentflow" / "vendors.json").read_text())
    assert [v["id"] for v in stored["vendors"]] == ["openai", "anthropic", "local", "github"]
    github = vendors(project)["github"]
    assert (github["dpa"], github["sla"], github["data_processed"]) == ("2026-02-01", 99.95,
                                                                         ["source code", "pull requests"])
    code, out, _ = run(project, "assess", "github", "--status", "rejected")
    assert code == 0
    today = time.strftime("%Y-%m-%d", time.gmtime())
    assert [a["date"] for a in vendors(project)["github"]["assessments"]] == [today]


@pytest.mark.parametrize(("args", "message"), [
    (["show", "nobody"], "unknown vendor 'nobody'; the register has openai, anthropic, local"),
    (["assess", "nobody", "--status", "approved"], "unknown vendor 'nobody'"),
    (["assess", "openai", "--status", "fine"], "unknown status 'fine': use one of approved, pending, rejected"),
    (["add", "x", "--status", "maybe"], "unknown status 'maybe'"),
    (["add", "openai"], "vendor 'openai' is already in the register"),
    (["add", "Bad Id"], "vendor id 'Bad Id' must be lower case"),
    (["add", "x", "--dpa", "sometimes"], "DPA 'sometimes' is not yes, no or a date"),
    (["add", "x", "--sla", "120"], "SLA 120.0 is not a percentage"),
    (["assess", "openai", "--status", "approved", "--date", "yesterday"], "date 'yesterday' is not YYYY-MM-DD"),
    (["assess", "openai", "--status", "approved", "--p95-ms", "-5"], "p95 latency -5.0 ms is not positive"),
    (["sla", "--since", "lately"], "--since 'lately' is neither a duration"),
])
def test_bad_input_exits_2_with_a_clear_message(project: Path, args: list[str], message: str) -> None:
    code, _, err = run(project, *args)
    assert code == 2
    assert message in err
    assert not (project / ".aigentflow" / "vendors.json").exists()


def test_outside_a_git_repository(tmp_path: Path) -> None:
    code, _, err = run(tmp_path, "list")
    assert code == 2 and "is not inside a git repository" in err


def _write_calls(project: Path, model: str, latencies_ms: list[float], errors: int = 0,
                 start_ns: int | None = None) -> None:
    start = start_ns or time.time_ns() - 3600 * 10**9
    with SegmentWriter(ProjectPaths(project).traces_dir, None) as writer:
        for index, latency in enumerate(latencies_ms):
            begin = start + index * 10**9
            writer.add(make_span(
                model_span_name(model), "model", run_id="run-1", start_ns=begin, end_ns=begin + int(latency * 1e6),
                status="error" if index < errors else "ok", error="RateLimitError" if index < errors else None,
                attributes={"gen_ai.operation.name": "chat", REQUEST_MODEL: model},
            ))
        writer.add(make_span("invoke_agent builder", "agent", run_id="run-1", start_ns=start, end_ns=start + 1))


def test_sla_from_model_call_spans(project: Path) -> None:
    _write_calls(project, "openai/gpt-4o-mini", [50.0] * 1000, errors=2)        # 99.8%: below 99.9
    _write_calls(project, "anthropic/claude-sonnet-4-5", [100.0 + i for i in range(100)])
    _write_calls(project, "groq/llama-3.1-8b-instant", [10.0, 30.0])              # not in the register
    _write_calls(project, "gpt-4o", [70.0] * 5, start_ns=time.time_ns() - 10 * 86400 * 10**9)  # ten days ago

    code, out, err = run(project, "sla", "--json")
    assert code == 1, err  # a vendor is red
    report = json.loads(out)
    rows = {r["vendor"]: r for r in report["vendors"]}
    assert report["red"] == ["openai"]
    openai = rows["openai"]
    assert (openai["calls"], openai["errors"], openai["availability"]) == (1005, 2, 99.801)
    assert openai["error_rate"] == 0.00199
    assert openai["state"] == "red" and openai["sla"] == 99.9
    assert sorted(openai["models"]) == ["gpt-4o", "openai/gpt-4o-mini"]
    anthropic = rows["anthropic"]
    assert (anthropic["calls"], anthropic["availability"], anthropic["state"]) == (100, 100.0, "green")
    assert (anthropic["p50_ms"], anthropic["p95_ms"]) == (149.5, 194.05)
    assert rows["groq"]["registered"] is False and rows["groq"]["state"] == "green"
    assert rows["local"]["state"] == "no data"

    code, out, _ = run(project, "sla")
    assert "openai       red        1005      2   99.801   99.9      50.0      50.0" in out
    assert "groq         green         2      0  100.000   99.9      20.0      29.0  (not in the register)" in out

    code, out, _ = run(project, "sla", "--since", "7d", "--json")
    rows = {r["vendor"]: r for r in json.loads(out)["vendors"]}
    assert rows["openai"]["calls"] == 1000 and rows["openai"]["models"] == ["openai/gpt-4o-mini"]


def test_a_stated_sla_and_latency_target_decide_the_colour(project: Path) -> None:
    _write_calls(project, "openai/gpt-4o-mini", [50.0] * 1000, errors=2)
    _write_calls(project, "anthropic/claude-sonnet-4-5", [100.0 + i for i in range(100)])
    assert run(project, "assess", "openai", "--status", "approved", "--sla", "99.5")[0] == 0
    assert run(project, "assess", "anthropic", "--status", "approved", "--p95-ms", "150")[0] == 0
    code, out, _ = run(project, "sla", "--json")
    assert code == 1
    report = json.loads(out)
    rows = {r["vendor"]: r for r in report["vendors"]}
    assert report["red"] == ["anthropic"]  # every call succeeded, but p95 194 ms is over the stated 150 ms
    assert (rows["openai"]["state"], rows["openai"]["sla"]) == ("green", 99.5)  # 99.8% meets a stated 99.5%
    assert rows["anthropic"]["p95_latency_ms"] == 150.0


def test_sla_with_no_traces(project: Path) -> None:
    code, out, _ = run(project, "sla")
    assert code == 0
    assert "no model calls recorded in" in out
