"""`aigentflow cluster up|status|down` and `aigentflow dashboard` against real `ray start` heads on
127.0.0.1, each with its own free ports and temp dir; `down` must stop only its own cluster."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from aigentflow.cli import cluster_cmd
from aigentflow.cluster import head as cluster


def cli() -> typer.Typer:
    """The commands wired as in aigentflow.cli.main."""
    app = typer.Typer()
    app.add_typer(cluster_cmd.app, name="cluster")
    app.command("dashboard")(cluster_cmd.dashboard)
    return app


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli(), list(args))
    return result.exit_code, result.stdout + result.stderr


@pytest.fixture
def ray_temp_dir() -> Iterator[Path]:
    """A short temp dir (Ray's socket paths must stay under 107 characters), never /tmp/ray."""
    path = Path(tempfile.mkdtemp(prefix="af-ray-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def recorded_cluster(user_config: Path, ray_temp_dir: Path) -> Iterator[Path]:
    """The state file `cluster up` writes; whatever it records is stopped at the end, even on failure."""
    state_file = user_config / cluster.STATE_FILENAME
    yield state_file
    cluster.down(state_file, timeout_s=10)


@pytest.fixture
def other_head(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """A separate Ray head (not started by aigentflow) in its own process group, on its own free ports."""
    port, temp = cluster.free_port(), Path(tempfile.mkdtemp(prefix="af-other-"))
    head = subprocess.Popen(
        [str(Path(sys.executable).parent / "ray"), "start", "--head", "--block", "--node-ip-address=127.0.0.1",
         f"--port={port}", "--include-dashboard=false", f"--dashboard-port={cluster.free_port()}",
         f"--ray-client-server-port={cluster.free_port()}", f"--metrics-export-port={cluster.free_port()}",
         f"--dashboard-agent-listen-port={cluster.free_port()}", "--disable-usage-stats", "--num-cpus=1",
         f"--temp-dir={temp}"],
        stdout=(tmp_path / "other.log").open("wb"), stderr=subprocess.STDOUT, start_new_session=True,
        env={**os.environ, "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0", "RAY_USAGE_STATS_ENABLED": "0"},
    )
    yield head, port
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(head.pid, sig)
            head.wait(timeout=20)
            break
        except (ProcessLookupError, subprocess.TimeoutExpired):
            continue
    shutil.rmtree(temp, ignore_errors=True)


def wait_for(condition, timeout_s: float) -> bool:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.2)
    return False


def dashboard_get(url: str) -> tuple[int, bytes]:
    token = Path.home() / ".ray" / "auth_token"
    headers = {"Authorization": f"Bearer {token.read_text().strip()}"} if token.exists() else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=5) as response:
        return response.status, response.read()


@pytest.mark.ray
def test_up_status_connect_down_leaves_other_ray_running(
    recorded_cluster: Path, ray_temp_dir: Path, other_head: tuple[subprocess.Popen[bytes], int],
) -> None:
    code, out = invoke("cluster", "up", "--num-cpus", "1", "--temp-dir", str(ray_temp_dir), "--json")
    assert code == 0, out
    started = json.loads(out)
    address, url = started["gcs_address"], started["dashboard_url"]
    assert address.startswith("127.0.0.1:") and url.startswith("http://127.0.0.1:")
    assert started["already_running"] is False and started["seconds"] < 60
    assert json.loads(recorded_cluster.read_text())["gcs_address"] == address

    code, out = invoke("cluster", "status", "--json")
    assert code == 0 and json.loads(out)["running"] is True and json.loads(out)["gcs_address"] == address
    assert cluster.recorded_local_cluster(recorded_cluster) == address

    assert wait_for(lambda: cluster.http_status(url) == 200, 45), f"dashboard {url} never answered"
    status, body = dashboard_get(f"{url}/api/version")
    assert status == 200 and "ray_version" in json.loads(body)
    code, out = invoke("dashboard")
    assert code == 0 and url in out

    code, out = invoke("cluster", "up")
    assert code == 0 and f"already running at {address}" in out and "aigentflow cluster down" in out

    began = time.monotonic()
    connect = (f"import ray; ray.init(address='{address}', log_to_driver=False); "
               "print(ray.cluster_resources().get('CPU'))")
    probe = subprocess.run([sys.executable, "-c", connect], check=False, capture_output=True, text=True, timeout=60)
    assert probe.stdout.strip().splitlines()[-1:] == ["1.0"], probe.stderr[-2000:]
    assert time.monotonic() - began < 20

    other, other_port = other_head
    assert wait_for(lambda: cluster.port_answers(other_port), 60), "the other Ray head never came up"

    code, out = invoke("cluster", "down")
    assert code == 0 and f"Stopped the Ray head at {address}" in out
    assert not recorded_cluster.exists()
    assert not cluster.port_answers(int(address.rsplit(":", 1)[1]))
    assert not cluster.session_pids(started["session_id"])
    assert other.poll() is None and cluster.port_answers(other_port), "down stopped another Ray instance"

    code, out = invoke("cluster", "status")
    assert code == 0 and "No cluster is running" in out and "aigentflow cluster up" in out
    code, out = invoke("dashboard")
    assert code == 2 and "no local Ray cluster is running" in out and "aigentflow cluster up" in out
    code, out = invoke("cluster", "down", "--json")
    assert code == 0 and json.loads(out)["stopped"] is False


def test_stale_record_is_reported_not_running_and_removed_by_down(user_config: Path) -> None:
    state_file = user_config / cluster.STATE_FILENAME
    dead_port = cluster.free_port()
    state_file.write_text(json.dumps({
        "gcs_address": f"127.0.0.1:{dead_port}", "dashboard_url": None, "session_id": 2**22 + 17,
        "temp_dir": str(user_config), "log_file": str(user_config / "x.log"), "started_at": 0.0,
    }))
    info = cluster.status(state_file)
    assert info is not None and info.running is False
    assert cluster.recorded_local_cluster(state_file) is None
    code, out = invoke("cluster", "status")
    assert code == 0 and "not running any more" in out
    code, out = invoke("cluster", "down")
    assert code == 0 and "nothing to stop" in out
    assert not state_file.exists()


def test_dashboard_without_cluster_exits_2_and_says_how_to_start_one(
    user_config: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    code, out = invoke("dashboard")
    assert code == 2 and "aigentflow cluster up" in out
    code, out = invoke("dashboard", "--address", f"http://127.0.0.1:{cluster.free_port()}")
    assert code == 2 and "no dashboard answers" in out
    code, out = invoke("cluster", "down")
    assert code == 0 and "No cluster was running" in out


def test_broken_record_names_the_file(user_config: Path) -> None:
    (user_config / cluster.STATE_FILENAME).write_text("{not json")
    code, out = invoke("cluster", "status")
    assert code == 2 and str(user_config / cluster.STATE_FILENAME) in out and "delete it" in out


def test_status_and_dashboard_stay_fast_and_never_import_ray(user_config: Path) -> None:
    script = (
        "import sys, time; t = time.monotonic(); import typer; from typer.testing import CliRunner; "
        "from aigentflow.cli import cluster_cmd; app = typer.Typer(); "
        "app.add_typer(cluster_cmd.app, name='cluster'); app.command('dashboard')(cluster_cmd.dashboard); "
        "codes = [CliRunner().invoke(app, args).exit_code for args in (['cluster', 'status'], ['dashboard'])]; "
        "import json; print(json.dumps([codes, 'ray' in sys.modules, time.monotonic() - t]))"
    )
    done = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True,
                          timeout=30, cwd=Path(__file__).parents[1])
    codes, ray_imported, seconds = json.loads(done.stdout.strip().splitlines()[-1])
    assert codes == [0, 2] and ray_imported is False, done.stdout + done.stderr
    assert seconds < 1.0
