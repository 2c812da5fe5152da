"""MCP servers: configuration files, the synchronous hub against real server processes (the
published ``mcp-server-time`` and our own ``tests/mcp_edge_server.py``), and ``aigentflow mcp``.

No Ray. Every server is a real subprocess speaking MCP over stdio (one over Streamable HTTP);
timeouts are short so that the whole file runs in seconds.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from aigentflow.exceptions import UsageError
from aigentflow.mcp.config import ServerConfig, load_server, load_servers
from tests.conftest import aigentflow, cli_env

EDGE_SERVER = Path(__file__).with_name("mcp_edge_server.py").resolve()
TIME_SERVER = Path(sys.executable).parent / "mcp-server-time"


def write_servers(path: Path, servers: dict[str, object]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"mcpServers": servers}, indent=2))
    return path


def edge_entry(*extra_args: str, **fields: object) -> dict[str, object]:
    return {"command": sys.executable, "args": [str(EDGE_SERVER), *extra_args], **fields}


def edge_config(*extra_args: str, name: str = "edge", **fields: object) -> ServerConfig:
    options = {"timeout_s": 10.0, "startup_timeout_s": 15.0, **fields}
    return ServerConfig(name=name, transport="stdio", command=sys.executable,
                        args=(str(EDGE_SERVER), *extra_args), **options)  # type: ignore[arg-type]


def processes_with(marker: str) -> list[int]:
    """Live processes whose command line contains ``marker`` (zombies have none)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if marker.encode() in cmdline:
            found.append(int(entry.name))
    return found


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_gone(marker: str, within_s: float) -> list[int]:
    deadline = time.monotonic() + within_s
    while (alive := processes_with(marker)) and time.monotonic() < deadline:
        time.sleep(0.1)
    return alive


# -- configuration ---------------------------------------------------------------------------------


def test_project_entries_override_user_entries(tmp_path: Path) -> None:
    user_dir, project = tmp_path / "user", tmp_path / "project"
    write_servers(user_dir / "mcp.json", {
        "shared": {"command": "user-server", "args": ["--user"]},
        "mine": {"url": "https://user.example.com/mcp"},
        "later-off": {"command": "from-user"},
    })
    project_file = write_servers(project / ".aigentflow" / "mcp.json", {
        "shared": {"command": "project-server", "args": ["--project"], "timeout_s": 5},
        "later-off": {"command": "from-project", "disabled": True},
    })

    servers = load_servers(project, user_dir=user_dir, environ={})

    assert sorted(servers) == ["mine", "shared"]
    assert servers["shared"].command == "project-server" and servers["shared"].args == ("--project",)
    assert servers["shared"].timeout_s == 5.0 and servers["shared"].source == project_file
    assert servers["mine"].transport == "http" and servers["mine"].source == user_dir / "mcp.json"
    assert servers["mine"].timeout_s == 30.0 and servers["mine"].startup_timeout_s == 20.0
    # a project entry with "disabled": true switches the user's entry of that name off
    assert load_servers(project, user_dir=user_dir, environ={}, include_disabled=True)["later-off"].disabled
    # outside a project: the user's file only
    assert sorted(load_servers(None, user_dir=user_dir, environ={})) == ["later-off", "mine", "shared"]


def test_variables_are_expanded_with_defaults(tmp_path: Path) -> None:
    write_servers(tmp_path / "mcp.json", {
        "stdio": {"command": "${TOOL_BIN:-mcp-tool}", "args": ["--region", "${REGION:-eu}", "--key=${KEY}"],
                  "env": {"API_KEY": "${KEY}", "MODE": "${MODE:-fast}"}, "cwd": "${WORK:-sub}"},
        "remote": {"url": "https://${HOST}/mcp", "headers": {"Authorization": "Bearer ${KEY}"}},
    })

    servers = load_servers(None, user_dir=tmp_path, environ={"KEY": "k-123", "REGION": "", "HOST": "mcp.example.com"})

    stdio, remote = servers["stdio"], servers["remote"]
    assert stdio.command == "mcp-tool"
    assert stdio.args == ("--region", "eu", "--key=k-123")  # an empty variable takes the default, as in a shell
    assert stdio.env == {"API_KEY": "k-123", "MODE": "fast"}
    assert stdio.cwd == str(tmp_path / "sub")  # relative to the file's base directory
    assert remote.url == "https://mcp.example.com/mcp" and remote.headers == {"Authorization": "Bearer k-123"}
    # what people see is the entry as written: references, not their values
    assert "${KEY}" in stdio.describe() and "k-123" not in stdio.describe()


def test_an_unset_variable_names_the_variable_never_a_value(tmp_path: Path) -> None:
    path = write_servers(tmp_path / "mcp.json", {
        "search": {"command": "search-server", "env": {"GIVEN": "${SET_SECRET}", "MISSING": "${NOT_SET_ANYWHERE}"}},
        "other": {"command": "other", "env": {"X": "${ALSO_NOT_SET}"}},
    })
    environ = {"SET_SECRET": "sk-live-very-secret-value"}

    with pytest.raises(UsageError) as caught:
        load_servers(None, user_dir=tmp_path, environ=environ)

    message = str(caught.value)
    assert str(path) in message and "'search'" in message and "env.MISSING" in message
    assert "NOT_SET_ANYWHERE" in message and "${NOT_SET_ANYWHERE:-default}" in message
    assert "sk-live-very-secret-value" not in message
    # one server is loaded without the others' variables
    assert load_server("search", None, user_dir=tmp_path, environ={**environ, "NOT_SET_ANYWHERE": "v"}).env == {
        "GIVEN": "sk-live-very-secret-value", "MISSING": "v"}
    with pytest.raises(UsageError, match=r"no MCP server named 'nope' is configured \(configured: other, search\)"):
        load_server("nope", None, user_dir=tmp_path, environ=environ)


def test_invalid_json_names_the_file_and_the_line(tmp_path: Path) -> None:
    path = tmp_path / "mcp.json"
    path.write_text('{\n  "mcpServers": {\n    "time": {"command": "mcp-server-time",}\n  }\n}\n')

    with pytest.raises(UsageError) as caught:
        load_servers(None, user_dir=tmp_path, environ={})

    assert str(path) in str(caught.value) and "line 3" in str(caught.value)


@pytest.mark.parametrize(("document", "expected"), [
    ({"servers": {}}, 'no "mcpServers" key'),
    ({"mcpServers": []}, '"mcpServers" must be an object'),
    ({"mcpServers": {"x": {"args": ["a"]}}}, "neither `command`"),
    ({"mcpServers": {"x": {"command": "a", "url": "https://h/mcp"}}}, "both `command` and `url`"),
    ({"mcpServers": {"x": {"command": "a", "args": "--flag"}}}, "`args` must be a list of strings"),
    ({"mcpServers": {"x": {"command": "a", "args": ["--port", 8080]}}}, "`args[1]` must be a string"),
    ({"mcpServers": {"x": {"command": "a", "env": {"N": 1}}}}, "`env.N` must be a string"),
    ({"mcpServers": {"x": {"url": "ftp://h/mcp"}}}, "must start with http:// or https://"),
    ({"mcpServers": {"x": {"url": "https://h/mcp", "type": "stdio"}}}, "needs `command`"),
    ({"mcpServers": {"x": {"url": "https://h/mcp", "type": "sse"}}}, "not supported"),
    ({"mcpServers": {"x": {"command": "a", "timeout_s": -1}}}, "`timeout_s` must be a positive number"),
    ({"mcpServers": {"x": {"command": "a", "agrs": []}}}, "did you mean 'args'"),
    ({"mcpServers": {"bad/name": {"command": "a"}}}, "letters, digits, '-' and '_' only"),
])
def test_invalid_entries_say_what_is_wrong(tmp_path: Path, document: dict[str, object], expected: str) -> None:
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps(document))

    with pytest.raises(UsageError) as caught:
        load_servers(None, user_dir=tmp_path, environ={})

    assert str(path) in str(caught.value) and expected in str(caught.value)


def test_describe_shows_keys_never_env_or_header_values(tmp_path: Path) -> None:
    config = ServerConfig(name="s", transport="stdio", command="srv", args=("--x",),
                          env={"API_KEY": "sk-abcdef-123456"}, headers={})
    remote = ServerConfig(name="r", transport="http", url="https://bob:pw-secret@mcp.example.com/mcp?key=q-secret",
                          headers={"Authorization": "Bearer tok-secret-999"})

    for text in (config.describe(), repr(config), json.dumps(config.to_dict())):
        assert "API_KEY" in text and "sk-abcdef-123456" not in text and "srv --x" in text
    for text in (remote.describe(), repr(remote), json.dumps(remote.to_dict())):
        assert "Authorization" in text and "mcp.example.com/mcp" in text
        assert not any(secret in text for secret in ("tok-secret-999", "pw-secret", "q-secret"))


# -- the hub against the edge server ---------------------------------------------------------------


def test_edge_server_tools_and_results() -> None:
    from aigentflow.mcp.client import McpHub

    with McpHub({"edge": edge_config()}) as hub:
        tools = {tool.name: tool for tool in hub.tools("edge")}
        assert {"echo", "add", "fail", "crash", "hang", "big", "env"} <= set(tools)
        assert tools["echo"].id == "edge/echo" and tools["echo"].input_schema["properties"]["text"]["type"] == "string"

        echo = hub.call("edge", "echo", {"text": "hello"})
        assert (echo.ok, echo.text, echo.is_error, echo.error, echo.size) == (True, "hello", False, None, 5)
        assert hub.call("edge", "add", {"a": 2, "b": 3.5}).structured == {"result": 5.5}

        failed = hub.call("edge", "fail", {"message": "the disk is full"})
        assert not failed.ok and failed.is_error and failed.error is None and "the disk is full" in failed.text

        big = hub.call("edge", "big", {"n": 200_000})
        assert big.ok and big.size == 200_000
        assert hub.call("edge", "image", {}).text == "[image/png, 67 bytes]"

        unknown = hub.call("edge", "no_such_tool", {})
        assert not unknown.ok and "unknown tool 'no_such_tool'" in (unknown.error or "") and "echo" in unknown.error
        bad_args = hub.call("edge", "add", {"a": "not a number"})
        assert not bad_args.ok and (bad_args.is_error or bad_args.error)
        assert "no MCP server named 'nope'" in (hub.call("nope", "echo", {}).error or "")


def test_a_crash_mid_call_is_reported_and_the_next_call_restarts_the_server() -> None:
    from aigentflow.mcp.client import McpHub

    with McpHub({"edge": edge_config()}) as hub:
        first_pid = hub.call("edge", "pid", {}).structured["result"]

        crashed = hub.call("edge", "crash", {})

        assert not crashed.ok and not crashed.is_error
        assert "closed the connection during the call" in (crashed.error or "")
        assert "crashing on purpose" in crashed.error  # the server's stderr, for diagnosis
        after = hub.call("edge", "echo", {"text": "still here"})
        assert after.ok and after.text == "still here"
        assert hub.call("edge", "pid", {}).structured["result"] != first_pid


def test_a_server_that_died_between_calls_is_restarted_transparently() -> None:
    from aigentflow.mcp.client import McpHub

    with McpHub({"edge": edge_config()}) as hub:
        pid = hub.call("edge", "pid", {}).structured["result"]
        os.kill(pid, signal.SIGKILL)
        time.sleep(0.5)

        result = hub.call("edge", "echo", {"text": "back"})

        assert result.ok and result.text == "back", result


def test_a_hung_call_times_out_and_the_server_is_restarted() -> None:
    from aigentflow.mcp.client import McpHub

    marker = f"hang-{uuid.uuid4().hex}"
    with McpHub({"edge": edge_config(marker)}) as hub:
        assert hub.call("edge", "echo", {"text": "warm"}).ok
        hung_pid = hub.call("edge", "pid", {}).structured["result"]
        started = time.monotonic()

        result = hub.call("edge", "hang", {"ignore_sigterm": True}, timeout_s=2)

        elapsed = time.monotonic() - started
        assert not result.ok and "timed out after 2 s" in (result.error or ""), result
        assert 1.9 <= elapsed < 5, elapsed
        assert hub.call("edge", "echo", {"text": "fresh"}).text == "fresh"
        # the hung server (which even ignores SIGTERM) is killed in the background
        deadline = time.monotonic() + 10
        while hung_pid in processes_with(marker) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert hung_pid not in processes_with(marker)


def test_a_server_that_cannot_start_gives_a_clear_error() -> None:
    from aigentflow.mcp.client import McpHub, McpServerError

    servers = {
        "missing": ServerConfig(name="missing", transport="stdio", command="aigentflow-no-such-mcp-server",
                                startup_timeout_s=5),
        "quits": edge_config("--exit-at-start", "5", name="quits"),
        "silent": ServerConfig(name="silent", transport="stdio", command="sleep", args=("30",), startup_timeout_s=1),
        "nowhere": ServerConfig(name="nowhere", transport="http", url=f"http://127.0.0.1:{free_port()}/mcp",
                                headers={"Authorization": "Bearer tok-never-shown"}, startup_timeout_s=5),
    }
    with McpHub(servers) as hub:
        missing = hub.call("missing", "anything", {})
        assert not missing.ok and "command not found: 'aigentflow-no-such-mcp-server'" in (missing.error or "")
        with pytest.raises(McpServerError, match="command not found"):
            hub.tools("missing")

        quits = hub.call("quits", "echo", {"text": "x"})
        assert "exited before completing the MCP handshake" in (quits.error or "")
        assert "exiting at start with code 5" in quits.error

        nowhere = hub.call("nowhere", "echo", {})
        assert "cannot connect to http://127.0.0.1:" in (nowhere.error or "") and "tok-never-shown" not in nowhere.error

        started = time.monotonic()
        silent = hub.call("silent", "echo", {})
        assert "no MCP handshake within 1 s" in (silent.error or "") and time.monotonic() - started < 3


def test_servers_get_a_minimal_environment_plus_their_configured_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aigentflow.mcp.client import McpHub

    monkeypatch.setenv("AIGENTFLOW_MCP_LEAK_CHECK", "sk-should-never-reach-a-server")
    monkeypatch.setenv("MCP_TEST_GIVEN", "passed-on-purpose")
    write_servers(tmp_path / "mcp.json", {
        "edge": edge_entry(env={"GIVEN": "${MCP_TEST_GIVEN}", "LITERAL": "plain"}, timeout_s=10),
    })
    servers = load_servers(None, user_dir=tmp_path)

    with McpHub(servers) as hub:
        def env(name: str) -> str:
            return hub.call("edge", "env", {"name": name}).text

        assert env("AIGENTFLOW_MCP_LEAK_CHECK") == "<unset>"
        assert env("GIVEN") == "passed-on-purpose" and env("LITERAL") == "plain"
        assert env("PATH") == os.environ["PATH"]


def test_concurrent_calls_from_threads_share_one_session() -> None:
    from aigentflow.mcp.client import McpHub

    with McpHub({"edge": edge_config()}) as hub:
        results: dict[int, str] = {}

        def worker(i: int) -> None:
            results[i] = hub.call("edge", "echo", {"text": f"call {i}"}).text

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert results == {i: f"call {i}" for i in range(12)}
        assert len({hub.call("edge", "pid", {}).text for _ in range(3)}) == 1


def test_close_stops_every_server_process_even_mid_call() -> None:
    from aigentflow.mcp.client import McpHub

    marker = f"close-{uuid.uuid4().hex}"
    hub = McpHub({"a": edge_config(marker, name="a"), "b": edge_config(marker, name="b")})
    assert hub.call("a", "echo", {"text": "x"}).ok and hub.call("b", "echo", {"text": "y"}).ok
    assert len(processes_with(marker)) == 2
    in_flight: dict[str, object] = {}
    caller = threading.Thread(target=lambda: in_flight.update(r=hub.call("b", "hang", {"ignore_sigterm": True},
                                                                           timeout_s=60)))
    caller.start()
    time.sleep(0.5)

    started = time.monotonic()
    hub.close()

    assert time.monotonic() - started < 8
    caller.join(timeout=5)
    assert not in_flight["r"].ok  # type: ignore[attr-defined]
    assert wait_until_gone(marker, within_s=2) == []
    hub.close()  # idempotent
    assert "closed" in (hub.call("a", "echo", {"text": "z"}).error or "")


def test_streamable_http_server() -> None:
    from aigentflow.mcp.client import McpHub

    port = free_port()
    server = subprocess.Popen([sys.executable, str(EDGE_SERVER), "--http", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.1)
        config = ServerConfig(name="web", transport="http", url=f"http://127.0.0.1:{port}/mcp",
                              headers={"X-Test": "1"}, timeout_s=10, startup_timeout_s=10)
        with McpHub({"web": config}) as hub:
            assert "echo" in {tool.name for tool in hub.tools("web")}
            assert hub.call("web", "echo", {"text": "over http"}).text == "over http"
    finally:
        server.terminate()
        server.wait(timeout=10)


# -- the published mcp-server-time -----------------------------------------------------------------


@pytest.fixture
def time_server() -> ServerConfig:
    if not TIME_SERVER.exists():
        pytest.skip(f"mcp-server-time is not installed next to {sys.executable} (pip install mcp-server-time)")
    return ServerConfig(name="time", transport="stdio", command=str(TIME_SERVER), args=("--local-timezone", "UTC"),
                        timeout_s=10, startup_timeout_s=15)


def test_time_server_lists_and_converts(time_server: ServerConfig) -> None:
    from aigentflow.mcp.client import McpHub

    with McpHub({"time": time_server}) as hub:
        assert {"get_current_time", "convert_time"} <= {tool.name for tool in hub.tools("time")}

        result = hub.call("time", "convert_time",
                          {"source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Tokyo"})

        assert result.ok, result
        assert result.structured["target"]["datetime"].endswith("T21:00:00+09:00")
        assert result.structured["source"]["datetime"].endswith("T12:00:00+00:00")
        assert result.structured["time_difference"] == "+9.0h"
        assert "21:00:00+09:00" in result.text

        invalid = hub.call("time", "convert_time",
                           {"source_timezone": "Mars/Olympus_Mons", "time": "12:00", "target_timezone": "UTC"})
        assert not invalid.ok and invalid.is_error and "Invalid timezone" in invalid.text


# -- the CLI ---------------------------------------------------------------------------------------


def test_cli_list_tools_and_call(sample_repo: Path) -> None:
    write_servers(sample_repo / ".aigentflow" / "mcp.json", {
        "edge": edge_entry(env={"TOKEN": "${MCP_TEST_TOKEN}", "PLAIN": "literal-secret-5678"}, timeout_s=10),
    })
    env = cli_env(MCP_TEST_TOKEN="tok-from-env-1234")

    listed = aigentflow("mcp", "list", cwd=sample_repo, env=env)
    assert listed.returncode == 0, listed.stderr
    assert "edge" in listed.stdout and "TOKEN" in listed.stdout
    listed_json = aigentflow("mcp", "list", "--json", cwd=sample_repo, env=env)
    assert json.loads(listed_json.stdout)["servers"][0]["env_keys"] == ["PLAIN", "TOKEN"]
    for output in (listed.stdout + listed.stderr, listed_json.stdout):
        assert "tok-from-env-1234" not in output and "literal-secret-5678" not in output

    tools = aigentflow("mcp", "tools", "edge", cwd=sample_repo, env=env)
    assert tools.returncode == 0, tools.stderr
    assert "echo" in tools.stdout and "Return the text unchanged." in tools.stdout
    tools_json = json.loads(aigentflow("mcp", "tools", "edge", "--json", cwd=sample_repo, env=env).stdout)
    assert any(t["id"] == "edge/echo" and "text" in t["input_schema"]["properties"] for t in tools_json)

    echoed = aigentflow("mcp", "call", "edge", "echo", "--args", '{"text": "hi"}', cwd=sample_repo, env=env)
    assert (echoed.returncode, echoed.stdout.strip()) == (0, "hi"), echoed.stderr
    typed = aigentflow("mcp", "call", "edge", "add", "--arg", "a=2", "--arg", "b=3", "--json", cwd=sample_repo, env=env)
    assert json.loads(typed.stdout)["structured"] == {"result": 5.0}

    failed = aigentflow("mcp", "call", "edge", "fail", "--arg", "message=no luck", cwd=sample_repo, env=env)
    assert failed.returncode == 1 and "no luck" in failed.stderr

    unknown = aigentflow("mcp", "call", "nope", "echo", cwd=sample_repo, env=env)
    assert unknown.returncode == 2 and "no MCP server named 'nope'" in unknown.stderr and "edge" in unknown.stderr
    bad_json = aigentflow("mcp", "call", "edge", "echo", "--args", "{text: hi}", cwd=sample_repo, env=env)
    assert bad_json.returncode == 2 and "--args is not valid JSON" in bad_json.stderr


def test_cli_outside_a_project_uses_the_user_file(tmp_path: Path, user_config: Path) -> None:
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    empty = aigentflow("mcp", "list", cwd=outside)
    assert empty.returncode == 0 and "No MCP servers configured" in empty.stdout

    write_servers(user_config / "mcp.json", {"edge": edge_entry(timeout_s=10)})
    listed = aigentflow("mcp", "list", "--json", cwd=outside)
    assert [s["name"] for s in json.loads(listed.stdout)["servers"]] == ["edge"]
    crashed = aigentflow("mcp", "call", "edge", "crash", cwd=outside)
    assert crashed.returncode == 1 and "closed the connection during the call" in crashed.stderr
