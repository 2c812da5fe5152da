"""Bad input, as a user meets it: a clear message, a non-zero exit, nothing already recorded lost.
None of these need Ray: each is refused before a run starts."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import DEMO_REQUEST, aigentflow


def test_unknown_command_and_flag_exit_2_with_a_hint(tmp_path: Path) -> None:
    command = aigentflow("frobnicate", cwd=tmp_path)
    assert command.returncode == 2 and "No such command" in command.stderr
    flag = aigentflow("status", "--frobnicate", cwd=tmp_path)
    assert flag.returncode == 2 and "--frobnicate" in flag.stderr


def test_init_outside_git_refuses_and_git_init_creates_one(tmp_path: Path, user_config: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    refused = aigentflow("init", cwd=plain)
    assert refused.returncode == 2
    assert "not inside a git repository" in refused.stderr and "--git-init" in refused.stderr
    assert not (plain / ".aigentflow").exists()
    created = aigentflow("init", "--git-init", cwd=plain)
    assert created.returncode == 0, created.stderr
    assert (plain / ".git").is_dir() and (plain / ".aigentflow" / "state.db").is_file()


def test_init_records_facts_and_is_idempotent(sample_repo: Path) -> None:
    first = aigentflow("init", "--json", cwd=sample_repo)
    second = aigentflow("init", "--json", cwd=sample_repo / "src")
    assert first.returncode == second.returncode == 0
    one, two = json.loads(first.stdout), json.loads(second.stdout)
    assert one["id"] == two["id"], "re-running init keeps the same project"
    facts = two["facts"]
    assert facts["primary_language"] == "Python" and facts["test_command"] == "python -m pytest"
    assert facts["package_manager"] == "pip" and facts["file_count"] > 0
    ignored = (sample_repo / ".aigentflow" / ".gitignore").read_text()
    assert "state.db" in ignored and "runs/" in ignored


def test_commands_before_init_say_to_run_init(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    for args in (["status"], ["runs"], ["run", DEMO_REQUEST]):
        result = aigentflow(*args, cwd=repo)
        assert result.returncode == 2 and "aigentflow init" in result.stderr, args


def test_empty_and_oversized_requests_are_refused(sample_repo: Path) -> None:
    empty = aigentflow("run", "   ", cwd=sample_repo)
    assert empty.returncode == 2 and "empty" in empty.stderr
    huge = aigentflow("run", "--file", "-", cwd=sample_repo, input="x" * 1_000_000)
    assert huge.returncode == 2 and "1000000 characters" in huge.stderr and "run.max_request_chars" in huge.stderr
    neither = aigentflow("run", cwd=sample_repo)
    assert neither.returncode == 2 and "--file" in neither.stderr
    runs = json.loads(aigentflow("runs", "--json", cwd=sample_repo).stdout)
    assert runs == [], "refused requests leave no run behind"


def test_unknown_model_and_missing_cassette_are_refused(sample_repo: Path) -> None:
    model = aigentflow("run", DEMO_REQUEST, "--model", "not-a-model", cwd=sample_repo)
    assert model.returncode == 2 and "unknown model 'not-a-model'" in model.stderr and "openai/" in model.stderr
    cassette = aigentflow("run", DEMO_REQUEST, "--model", "replay/nope", cwd=sample_repo)
    assert cassette.returncode == 2 and "no cassette 'nope'" in cassette.stderr and "demo" in cassette.stderr
    bad_set = aigentflow("run", DEMO_REQUEST, "--set", "model.temperature=hot", cwd=sample_repo)
    assert bad_set.returncode == 2 and "model.temperature" in bad_set.stderr and "hot" in bad_set.stderr


def test_corrupted_database_is_named_with_what_to_do(sample_repo: Path) -> None:
    database = sample_repo / ".aigentflow" / "state.db"
    for suffix in ("-wal", "-shm"):
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    database.write_bytes(b"this is not a database" * 100)
    for args in (["status"], ["runs"], ["run", DEMO_REQUEST]):
        result = aigentflow(*args, cwd=sample_repo)
        assert result.returncode == 2, args
        assert "corrupted" in result.stderr and "aigentflow init" in result.stderr, result.stderr
    assert database.read_bytes().startswith(b"this is not a database"), "the file is left for recovery"


def test_locked_database_refuses_writes_clearly_and_loses_nothing(sample_repo: Path) -> None:
    database = sample_repo / ".aigentflow" / "state.db"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sqlite3, sys, time; c = sqlite3.connect(sys.argv[1], isolation_level=None); "
         "c.execute('BEGIN EXCLUSIVE'); print('locked', flush=True); time.sleep(30)", str(database)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        blocked = aigentflow("admin", "emergency", "--pause-all", cwd=sample_repo)
        assert blocked.returncode == 2 and "locked" in blocked.stderr
        assert time.monotonic() - started < 20
        readable = aigentflow("status", cwd=sample_repo)
        assert readable.returncode == 2 and "no runs yet" in readable.stderr, "reads still work while locked"
    finally:
        holder.kill()
        holder.wait()
    project = sqlite3.connect(database).execute("SELECT count(*) FROM projects").fetchone()[0]
    assert project == 1


def test_unknown_run_id_is_named(sample_repo: Path) -> None:
    for args in (["status", "nope"], ["resume", "nope"], ["trace", "nope"]):
        result = aigentflow(*args, cwd=sample_repo)
        assert result.returncode == 2 and "nope" in result.stderr and "aigentflow runs" in result.stderr, args


def test_status_and_runs_never_import_ray_or_litellm(sample_repo: Path) -> None:
    for command in ("status", "runs", "--help"):
        probe = subprocess.run(
            [sys.executable, "-X", "importtime", "-m", "aigentflow", command],
            cwd=sample_repo, capture_output=True, text=True, timeout=60, check=False,
        )
        modules = {line.rsplit("|", 1)[-1].strip() for line in probe.stderr.splitlines() if "|" in line}
        assert "ray" not in modules and "litellm" not in modules, command
        assert "aigentflow.cli.main" in modules


def test_a_ray_address_that_does_not_answer_fails_fast_and_records_nothing(sample_repo: Path) -> None:
    started = time.monotonic()
    result = aigentflow("run", DEMO_REQUEST, "--address", "127.0.0.1:1", cwd=sample_repo)
    assert result.returncode == 2 and "nothing answers at the Ray address 127.0.0.1:1" in result.stderr
    assert time.monotonic() - started < 30
    assert json.loads(aigentflow("runs", "--json", cwd=sample_repo).stdout) == []
