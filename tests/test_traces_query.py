"""`aigentflow traces query`: read-only SQL over one wide `spans` view, as a user runs it (the installed
command in a real project, real Parquet segments and a real compacted traces.duckdb)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from aigentflow.redact import Redactor
from aigentflow.tracing import SegmentWriter, compact, list_segments, make_span
from aigentflow.tracing.spans import COST_USD, INPUT_TOKENS, OUTPUT_TOKENS, REQUEST_MODEL, root_span_id
from tests.conftest import aigentflow, cli_env, commit_files

REPO_ROOT = Path(__file__).resolve().parents[1]


def run_spans(run_id: str, calls: int = 2) -> list[dict]:
    """A run: its root, one state, an agent and its model calls (100 tokens in, 10 out, $0.01 each)."""
    root = make_span("invoke_workflow aigentflow", "run", run_id=run_id, span_id=root_span_id(run_id),
                     start_ns=1_000, end_ns=9_000_000)
    state = make_span("state PLANNING", "state", run_id=run_id, parent_id=root["span_id"], start_ns=2_000,
                      end_ns=8_000_000, attributes={"aigentflow.state.from": "PLANNING",
                                                    "aigentflow.state.to": "ARCHITECTING"})
    agent = make_span("invoke_agent planner", "agent", run_id=run_id, parent_id=state["span_id"], start_ns=3_000,
                      end_ns=7_000_000, attributes={"gen_ai.operation.name": "invoke_agent",
                                                    "gen_ai.agent.name": "planner", "gen_ai.agent.version": "1.0.0"})
    chats = [make_span("chat gpt-4o-mini", "model", run_id=run_id, parent_id=agent["span_id"],
                       start_ns=4_000 + i, end_ns=2_004_000 + i,
                       attributes={"gen_ai.operation.name": "chat", REQUEST_MODEL: "gpt-4o-mini",
                                   INPUT_TOKENS: 100, OUTPUT_TOKENS: 10, COST_USD: 0.01})
             for i in range(calls)]
    failed = make_span("exec python3", "command", run_id=run_id, parent_id=state["span_id"], start_ns=5_000,
                       end_ns=6_000, status="error", error="exited 1",
                       attributes={"process.executable.name": "python3", "process.exit.code": 1,
                                   "aigentflow.command.kind": "test"})
    return [root, state, agent, *chats, failed]


@pytest.fixture
def project(tmp_path: Path, user_config: Path) -> Path:
    from aigentflow.cli.project_cmd import initialise

    root = commit_files(tmp_path / "project", {"README.md": "# p\n"})
    initialise(root)
    return root


def traces(project: Path) -> Path:
    return project / ".aigentflow" / "traces"


def write(project: Path, spans: list[dict], redactor: Redactor | None = None) -> None:
    with SegmentWriter(traces(project), redactor, flush_every=3) as writer:
        writer.extend(spans)


def query(project: Path, sql: str, *args: str) -> subprocess.CompletedProcess[str]:
    return aigentflow("traces", "query", sql, *args, cwd=project, timeout=60)


def rows(project: Path, sql: str, *args: str) -> list[dict]:
    result = query(project, sql, "--json", *args)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")
            if p.is_file() and ".git/" not in str(p)}


def test_one_wide_view_with_genai_columns_over_segments_and_the_compacted_database(project: Path) -> None:
    write(project, run_spans("run-a"))
    compact(traces(project))  # run-a now lives in traces.duckdb
    kept = list_segments(traces(project))
    write(project, run_spans("run-b", calls=3))  # run-b in segments only
    # A compactor killed after committing but before deleting its segments leaves spans in both places.
    leftover = list_segments(traces(project))[0]
    shutil.copy(leftover, traces(project) / "copy.parquet")
    compact(traces(project))
    shutil.move(traces(project) / "copy.parquet", leftover)
    assert kept == [] and (traces(project) / "traces.duckdb").exists() and list_segments(traces(project))

    columns = {r["column_name"]: r["column_type"] for r in rows(project, "DESCRIBE spans")}
    for name in ("trace_id", "span_id", "parent_id", "run_id", "name", "kind", "start_ns", "end_ns", "duration_ms",
                 "status", "error", "gen_ai_operation_name", "gen_ai_agent_name", "gen_ai_agent_version",
                 "gen_ai_request_model", "gen_ai_usage_input_tokens", "gen_ai_usage_output_tokens", "cost_usd",
                 "process_executable_name", "process_exit_code", "attributes"):
        assert name in columns, name
    assert columns["gen_ai_usage_input_tokens"] == "BIGINT" and columns["cost_usd"] == "DOUBLE"
    assert columns["attributes"] == "JSON"

    totals = rows(project, "SELECT run_id, count(*) AS spans, count(DISTINCT span_id) AS ids, "
                           "sum(gen_ai_usage_input_tokens) AS tokens_in, round(sum(cost_usd), 4) AS cost "
                           "FROM spans GROUP BY run_id ORDER BY run_id")
    assert totals == [{"run_id": "run-a", "spans": 6, "ids": 6, "tokens_in": 200, "cost": 0.02},
                      {"run_id": "run-b", "spans": 7, "ids": 7, "tokens_in": 300, "cost": 0.03}]
    agent = rows(project, "SELECT gen_ai_agent_name, gen_ai_agent_version, duration_ms, attributes "
                          "FROM spans WHERE kind = 'agent' AND run_id = 'run-a'")[0]
    assert agent["gen_ai_agent_name"] == "planner" and agent["gen_ai_agent_version"] == "1.0.0"
    assert agent["duration_ms"] == pytest.approx(6.997)
    assert json.loads(agent["attributes"])["gen_ai.operation.name"] == "invoke_agent"
    failed = rows(project, "SELECT name, error, process_exit_code FROM spans WHERE status = 'error'", "--run", "run-b")
    assert failed == [{"name": "exec python3", "error": "exited 1", "process_exit_code": 1}]
    # --run: only that run's spans are in the view; an unknown run gives none
    assert rows(project, "SELECT DISTINCT run_id FROM spans", "--run", "run-a") == [{"run_id": "run-a"}]
    assert rows(project, "SELECT count(*) AS n FROM spans", "--run", "run-zzz") == [{"n": 0}]


def test_text_output_is_an_aligned_table(project: Path) -> None:
    write(project, run_spans("run-a"))
    result = query(project, "SELECT kind, count(*) AS n FROM spans GROUP BY kind ORDER BY n DESC, kind")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["kind", "n"] and set(lines[1].replace(" ", "")) == {"-"}
    assert lines[2].split() == ["model", "2"] and lines[2].rindex("2") == lines[0].rindex("n")
    assert lines[-1] == "(5 rows)"


def test_a_project_with_no_spans_yet_has_an_empty_view(project: Path) -> None:
    assert rows(project, "SELECT count(*) AS n, max(cost_usd) AS top FROM spans") == [{"n": 0, "top": None}]


WRITES = [
    "INSERT INTO spans SELECT * FROM spans",
    "DELETE FROM spans",
    "UPDATE spans SET status = 'ok'",
    "CREATE TABLE stolen AS SELECT * FROM spans",
    "DROP VIEW spans",
    "COPY (SELECT * FROM spans) TO 'out.csv'",
    "ATTACH '.aigentflow/traces/traces.duckdb' AS db",
    "PRAGMA version",
    "SET threads = 1",
    "INSTALL httpfs",
    "EXPORT DATABASE 'dump'",
    "SELECT 1; DELETE FROM spans",
    "SELECT count(*) FROM spans; COPY (SELECT 1) TO 'x.csv'",
    "",
]


@pytest.mark.parametrize("sql", WRITES)
def test_anything_but_one_read_only_statement_is_refused_and_nothing_changes(project: Path, sql: str) -> None:
    write(project, run_spans("run-a"))
    compact(traces(project))
    before = snapshot(project)
    result = query(project, sql)
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stderr.startswith("error: ") and result.stdout == ""
    assert "refused" in result.stderr or "statements given" in result.stderr or "no SQL statement" in result.stderr
    assert snapshot(project) == before
    assert rows(project, "SELECT count(*) AS n FROM spans") == [{"n": 6}]


def test_bad_sql_gets_duckdbs_message_and_exit_2(project: Path) -> None:
    write(project, run_spans("run-a"))
    result = query(project, "SELEC * FROM spans")
    assert result.returncode == 2 and 'syntax error at or near "SELEC"' in result.stderr
    result = query(project, "SELECT no_such_column FROM spans")
    assert result.returncode == 2 and "no_such_column" in result.stderr and "DuckDB" in result.stderr
    # files outside the trace directory cannot be read through the view's connection
    result = query(project, "SELECT * FROM read_csv('/etc/passwd')")
    assert result.returncode == 2 and "disabled by configuration" in result.stderr


def test_outside_a_project_it_says_so_and_exits_2(tmp_path: Path, user_config: Path) -> None:
    result = aigentflow("traces", "query", "SELECT 1", cwd=tmp_path, timeout=60)
    assert result.returncode == 2 and "not inside a git repository" in result.stderr
    bare = commit_files(tmp_path / "bare", {"a.txt": "a"})
    result = aigentflow("traces", "query", "SELECT 1", cwd=bare, timeout=60)
    assert result.returncode == 2 and "aigentflow init" in result.stderr


def test_secrets_never_reach_what_a_query_reads(project: Path) -> None:
    secret = "sk-proj-" + "Z" * 40
    spans = run_spans("run-s")
    spans[2]["attributes"]["aigentflow.tool.arguments"] = f"token={secret}"
    spans[-1]["error"] = f"exited 1: {secret}"
    write(project, spans, Redactor.from_environment())
    dump = query(project, "SELECT * FROM spans", "--json")
    assert dump.returncode == 0 and secret not in dump.stdout and "REDACTED" in dump.stdout


def test_queries_see_every_span_while_writers_and_a_compactor_run(project: Path) -> None:
    """Two writer processes append segments and a compactor merges them while queries run: every query
    succeeds, counts never go down and never double, and the last one sees every span."""
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(REPO_ROOT)!r})
        from pathlib import Path
        from aigentflow.tracing import SegmentWriter, make_span
        run = sys.argv[1]
        with SegmentWriter(Path({str(traces(project))!r}), None, flush_every=50) as writer:
            for i in range(3000):
                writer.add(make_span("chat m", "model", run_id=run, start_ns=i + 1, end_ns=i + 2))
    """)
    compactor = textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(REPO_ROOT)!r})
        from pathlib import Path
        from aigentflow.tracing import compact
        for _ in range(6):
            compact(Path({str(traces(project))!r}))
            time.sleep(0.3)
    """)
    env = cli_env(PYTHONPATH=str(REPO_ROOT))
    processes = [subprocess.Popen([sys.executable, "-c", script, run], env=env) for run in ("w1", "w2")]
    processes.append(subprocess.Popen([sys.executable, "-c", compactor], env=env))
    seen = []
    while any(p.poll() is None for p in processes):
        seen.append(rows(project, "SELECT count(*) AS n, count(DISTINCT span_id) AS ids FROM spans")[0])
    assert all(p.wait() == 0 for p in processes)
    final = rows(project, "SELECT run_id, count(*) AS n FROM spans GROUP BY run_id ORDER BY run_id")
    assert final == [{"run_id": "w1", "n": 3000}, {"run_id": "w2", "n": 3000}]
    counts = [s["n"] for s in seen]
    assert seen and all(s["n"] == s["ids"] for s in seen) and counts == sorted(counts)


def test_traces_commands_import_neither_ray_nor_litellm(project: Path) -> None:
    write(project, run_spans("run-a"))
    code = textwrap.dedent("""
        import sys
        from aigentflow.cli.main import app
        try:
            app(["traces", "query", "SELECT count(*) FROM spans"])
        except SystemExit as exc:
            assert not exc.code, exc.code
        print(sorted(m for m in ("ray", "litellm", "evolution.traces.otlp") if m in sys.modules))
    """)
    out = subprocess.run([sys.executable, "-c", code], cwd=project, capture_output=True, text=True, env=cli_env(),
                         timeout=60, check=True).stdout
    assert out.splitlines()[-1] == "[]"
