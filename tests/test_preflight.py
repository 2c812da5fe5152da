"""A model that cannot be called is refused before a run is recorded or Ray started, in well under a
second (no litellm import); a key the provider refuses at run time is not retried. The provider
table is checked against the installed litellm; the 401 comes from a local server speaking the
OpenAI wire format."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import metadata
from pathlib import Path

import pytest
from pydantic import BaseModel

from aigentflow.exceptions import ModelError, UsageError
from aigentflow.models import providers
from aigentflow.models.preflight import check_models
from tests.conftest import DEMO_REQUEST, aigentflow, cli_env

KEYLESS = {"OPENAI_API_KEY": None, "OPENAI_API_BASE": None, "OPENAI_BASE_URL": None}
JOBS_RUN = Path(__file__).resolve().parents[1] / "jobs" / "run.py"


def keyless_env() -> dict[str, str]:
    return {k: v for k, v in cli_env().items() if k not in KEYLESS}


def runs(repo: Path) -> list[dict]:
    listed = aigentflow("runs", "--json", cwd=repo)
    assert listed.returncode == 0, listed.stderr
    return json.loads(listed.stdout)


def imported(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[subprocess.CompletedProcess[str], set[str]]:
    """Run the CLI with ``-X importtime``: its result and the modules it imported."""
    probe = subprocess.run([sys.executable, "-X", "importtime", "-m", "aigentflow", *args], cwd=cwd, check=False,
                           capture_output=True, text=True, timeout=120, env=env)
    return probe, {line.rsplit("|", 1)[-1].strip() for line in probe.stderr.splitlines() if "|" in line}


# -- refused before anything starts -----------------------------------------------------------------


def test_run_without_the_key_exits_2_at_once_naming_model_and_variable(sample_repo: Path) -> None:
    started = time.monotonic()
    result = aigentflow("run", DEMO_REQUEST, "--model", "openai/gpt-4o-mini", cwd=sample_repo, env=keyless_env())
    elapsed = time.monotonic() - started
    assert result.returncode == 2, result.stderr
    assert "openai/gpt-4o-mini" in result.stderr and "OPENAI_API_KEY" in result.stderr
    assert "export OPENAI_API_KEY=..." in result.stderr and "replay/" in result.stderr
    assert elapsed < 2, f"took {elapsed:.2f} s"
    assert "Ray" not in result.stdout + result.stderr, "Ray was never started"
    assert runs(sample_repo) == [], "nothing was recorded"
    probe, modules = imported(["run", DEMO_REQUEST, "--model", "openai/gpt-4o-mini"], sample_repo, keyless_env())
    assert probe.returncode == 2 and "litellm" not in modules and "ray" not in modules


def test_an_unknown_provider_is_named_at_once(sample_repo: Path) -> None:
    started = time.monotonic()
    result = aigentflow("run", DEMO_REQUEST, "--model", "nosuch/model", cwd=sample_repo)
    assert result.returncode == 2 and "'nosuch' is not a provider litellm knows" in result.stderr
    assert "openai/gpt-4o-mini" in result.stderr, "with examples of names that work"
    assert time.monotonic() - started < 2
    assert runs(sample_repo) == []


def test_resume_without_the_key_exits_2_before_ray(sample_repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from aigentflow.project.paths import ProjectPaths
    from aigentflow.run.runner import plan_run, record_run

    monkeypatch.setenv("OPENAI_API_KEY", "sk-dummy-for-planning")
    run = record_run(ProjectPaths(sample_repo), plan_run(ProjectPaths(sample_repo), DEMO_REQUEST,
                                                         {"model.name": "openai/gpt-4o-mini"}))
    result = aigentflow("resume", run.id, cwd=sample_repo, env=keyless_env())
    assert result.returncode == 2 and "OPENAI_API_KEY" in result.stderr, result.stderr
    assert "Resuming" not in result.stdout, "refused before connecting to Ray"
    assert [r["state"] for r in runs(sample_repo)] == ["CREATED"]


def test_the_ray_job_entrypoint_exits_2_and_records_nothing(sample_repo: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(JOBS_RUN), DEMO_REQUEST, "--project", str(sample_repo), "--model", "openai/gpt-4o-mini"],
        cwd=sample_repo, capture_output=True, text=True, timeout=120, env=keyless_env(), check=False)
    assert result.returncode == 2 and "OPENAI_API_KEY" in result.stderr, result.stderr
    assert "attaching to Ray" not in result.stdout
    assert runs(sample_repo) == []


def test_submit_refuses_an_unknown_provider_before_contacting_the_job_server(sample_repo: Path) -> None:
    result = aigentflow("submit", "run", DEMO_REQUEST, "--model", "nosuch/model", "--address", "http://127.0.0.1:1",
                        cwd=sample_repo)
    assert result.returncode == 2 and "'nosuch' is not a provider" in result.stderr
    assert "job server" not in result.stderr
    cassette = aigentflow("submit", "run", DEMO_REQUEST, "--model", "replay/nope", "--address",
                          "http://127.0.0.1:1", cwd=sample_repo)
    assert cassette.returncode == 2 and "no cassette 'nope'" in cassette.stderr


def test_submit_leaves_keys_to_the_head_node(sample_repo: Path) -> None:
    """No key here is no reason to refuse: the job's own `aigentflow run` checks the head's keys."""
    result = aigentflow("submit", "run", DEMO_REQUEST, "--model", "openai/gpt-4o-mini", "--address",
                        "http://127.0.0.1:1", cwd=sample_repo, env=keyless_env())
    assert result.returncode == 2 and "no Ray job server answers at http://127.0.0.1:1" in result.stderr
    assert "OPENAI_API_KEY" not in result.stderr


# -- the table ----------------------------------------------------------------------------------------


def test_a_bare_name_resolves_through_the_table_without_litellm() -> None:
    code = ("import sys; from aigentflow.models import providers; "
            "print(providers.resolve('gpt-4o-mini'), providers.resolve('openai/gpt-4o-mini'), "
            "'litellm' in sys.modules)")
    probe = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=cli_env(),
                           check=False)
    assert probe.stdout.split() == ["openai", "openai", "False"], probe.stderr
    with pytest.raises(UsageError, match="model gpt-4o-mini cannot be called: provider openai needs OPENAI_API_KEY"):
        check_models(["gpt-4o-mini"], None, environ={})


def test_key_alternatives_empty_values_and_local_servers() -> None:
    check_models(["anthropic/claude-sonnet-4-5"], None, environ={"ANTHROPIC_AUTH_TOKEN": "t"})
    with pytest.raises(UsageError, match="OPENAI_API_KEY is empty"):
        check_models(["openai/gpt-4o-mini"], None, environ={"OPENAI_API_KEY": " "})
    with pytest.raises(UsageError, match=r"or instead .*AWS_PROFILE"):
        check_models(["bedrock/anthropic.claude-3-haiku-20240307-v1:0"], None, environ={})
    # litellm asks ollama for OLLAMA_API_BASE, but it defaults to http://localhost:11434: not refused
    assert providers.requirements("ollama") == [["OLLAMA_API_BASE"]]
    check_models(["ollama/llama3", "ollama_chat/llama3"], None, environ={})
    with pytest.raises(UsageError) as caught:
        check_models(["azure/gpt-4o"], None, environ={"AZURE_API_KEY": "secret-azure-key"})
    assert "AZURE_API_BASE and AZURE_API_VERSION are not set" in str(caught.value)
    assert "secret-azure-key" not in str(caught.value), "a value is never shown"


def test_a_table_for_another_litellm_is_not_trusted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Then litellm itself decides: slower, the same answers."""
    stale = tmp_path / "providers.json"
    stale.write_text(json.dumps({**json.loads(providers.TABLE.read_text()), "litellm_version": "0.0.1"}))
    monkeypatch.setattr(providers, "TABLE", stale)
    providers.table.cache_clear()
    try:
        with pytest.raises(providers.Undecided, match=r"litellm 0.0.1"):
            providers.table()
        with pytest.raises(UsageError, match="provider openai needs OPENAI_API_KEY"):
            check_models(["gpt-4o-mini"], None, environ={})
        with pytest.raises(UsageError, match="'nosuch' is not a provider"):
            check_models(["nosuch/model"], None, environ={})
    finally:
        providers.table.cache_clear()


@pytest.fixture(scope="module")
def litellm() -> Iterator[object]:
    yield providers._litellm()


def _table_passes(alternatives: list[list[str]], env: dict[str, str]) -> bool:
    return any(all(v in env for v in alt) for alt in alternatives)


def test_the_table_matches_the_installed_litellm(litellm: object) -> None:
    data = json.loads(providers.TABLE.read_text())
    assert data["litellm_version"] == metadata.version("litellm"), (
        f"providers.json is for litellm {data['litellm_version']}, {metadata.version('litellm')} is installed: "
        f"regenerate it with `{providers.COMMAND}`")
    validate = litellm.validate_environment  # type: ignore[attr-defined]
    for provider, alternatives in data["providers"].items():
        if provider in providers.INTERACTIVE:
            continue
        sample = data["samples"][provider]
        envs = [{}] + [dict.fromkeys(alt, "x") for alt in alternatives]
        envs += [dict.fromkeys(alt[:i] + alt[i + 1:], "x") for alt in alternatives for i in range(len(alt))]
        for env in envs:
            with providers.environment(env):
                verdict = validate(sample)["keys_in_environment"]
            assert verdict == _table_passes(alternatives, env), (provider, env, f"regenerate: {providers.COMMAND}")


def test_the_table_routes_names_as_litellm_does(litellm: object) -> None:
    data = json.loads(providers.TABLE.read_text())
    names = set(data["models"]) | {f"{p}/{providers.PROBE}" for p in data["prefixes"] if p not in providers.INTERACTIVE}
    names |= {n for n in litellm.model_cost if n.split("/", 1)[0] not in providers.INTERACTIVE}  # type: ignore[attr-defined]
    names |= {"nosuch/model", "not-a-model", "claude-opus-9-9", "us.anthropic.claude-next", "ft:gpt-4o:org:x",
              "meta/llama-2:" + "a" * 64, "amazon_nova-lite", "gpt-image-9", "azure/command-r-plus-08-2024"}
    wrong = {}
    with providers.environment({}):
        for name in sorted(names):
            try:
                mine = providers.resolve(name, {})
            except providers.Undecided:
                continue
            theirs = providers._route(litellm, name)
            if mine != theirs:
                wrong[name] = (mine, theirs)
            elif theirs is not None and theirs not in providers.INTERACTIVE:
                keyed = litellm.validate_environment(name)["keys_in_environment"]  # type: ignore[attr-defined]
                if keyed != _table_passes(providers.requirements(theirs), {}):
                    wrong[name] = ("keys", theirs)
    assert not wrong, f"{len(wrong)} names differ (table, litellm), e.g. {list(wrong.items())[:5]}; " \
                      f"regenerate with `{providers.COMMAND}`"
    assert os.environ.get("PATH"), "the environment is restored"


# -- at run time: a refused or missing key is not retried ------------------------------------------------


class Answer(BaseModel):
    value: int


@pytest.fixture
def refusing_server() -> Iterator[tuple[str, list[str]]]:
    """127.0.0.1:<port> answering every request as OpenAI does a bad key: 401 with its error JSON."""
    seen: list[str] = []

    class Refuse(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            seen.append(self.path)
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = json.dumps({"error": {
                "message": "Incorrect API key provided: sk-bad. You can find your API key at "
                           "https://platform.openai.com/account/api-keys.",
                "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}}).encode()
            self.send_response(401)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Refuse)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1", seen
    finally:
        server.shutdown()
        server.server_close()


def _ask(client: object) -> ModelError:
    with pytest.raises(ModelError) as caught:
        client.call_structured([{"role": "user", "content": "answer"}], Answer,  # type: ignore[attr-defined]
                               role="analyst", step="analyze")
    return caught.value


def test_a_401_is_not_retried(refusing_server: tuple[str, list[str]], monkeypatch: pytest.MonkeyPatch) -> None:
    from aigentflow.models.client import ModelClient
    from aigentflow.models.spec import ModelSpec

    base, seen = refusing_server
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-bad")
    monkeypatch.setenv("OPENAI_API_BASE", base)
    client = ModelClient(ModelSpec(name="openai/gpt-4o-mini", max_transient_retries=3, retry_backoff_s=0.01))
    error = _ask(client)
    assert "refused the credentials" in str(error) and "OPENAI_API_KEY" in str(error), error
    assert "not retried" in str(error) and "sk-bad" not in str(error)
    assert seen == ["/v1/chat/completions"], "exactly one request"
    assert not any(call.transient for call in error.calls)  # type: ignore[attr-defined]


def test_a_key_missing_at_call_time_is_not_retried(refusing_server: tuple[str, list[str]],
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    from aigentflow.models.client import ModelClient
    from aigentflow.models.spec import ModelSpec

    base, seen = refusing_server
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.setenv("OPENAI_API_BASE", base)
    client = ModelClient(ModelSpec(name="openai/gpt-4o-mini", max_transient_retries=3, retry_backoff_s=5))
    started = time.monotonic()
    error = _ask(client)
    assert time.monotonic() - started < 3, "no backoff: nothing was retried"
    assert "refused the credentials, or they are missing" in str(error) and "OPENAI_API_KEY" in str(error)
    assert not any(call.transient for call in error.calls)  # type: ignore[attr-defined]
    assert seen == []
