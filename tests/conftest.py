"""Shared fixtures: one real Ray head for the whole session, real git repositories, the CLI as a
subprocess. Only the model is a stand-in: the replay provider, reached through litellm."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
# Ray reads these at import: keep local clusters on loopback and present Ray's own auth token.
from aigentflow.cluster.env import prepare_ray_environment

prepare_ray_environment("127.0.0.1")

from aigentflow.demo import DEMO_REQUEST, create_sample_project  # noqa: E402, F401 - after prepare_ray_environment

GIT = ["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid", "-c", "core.hooksPath=/dev/null"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _bin(name: str) -> str:
    return str(Path(sys.executable).parent / name)


@pytest.fixture(scope="session")
def ray_head(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str, str]]:
    """A real Ray head node on 127.0.0.1 for the session, with its dashboard (the job server) and
    its Prometheus endpoint: (GCS address, dashboard URL, metrics URL). CLI runs connect to it with
    --address."""
    port, dashboard_port, metrics_port = _free_port(), _free_port(), _free_port()
    logs = tmp_path_factory.mktemp("ray") / "head.log"
    # A temp dir of its own (short: Ray's socket paths must fit in 107 bytes), so that no other Ray
    # instance on this machine is ever mistaken for it, nor it for them.
    temp_dir = tempfile.mkdtemp(prefix="afray-", dir="/tmp")
    head = subprocess.Popen(
        [_bin("ray"), "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={port}",
         "--include-dashboard=true", "--dashboard-host=127.0.0.1", f"--dashboard-port={dashboard_port}",
         f"--metrics-export-port={metrics_port}", f"--ray-client-server-port={_free_port()}",
         f"--dashboard-agent-listen-port={_free_port()}", "--disable-usage-stats", "--num-cpus=2",
         f"--temp-dir={temp_dir}"],
        stdout=logs.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
        env={**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0",
             "RAY_metrics_report_interval_ms": "1000",
             # as in an activated virtualenv: jobs run `aigentflow` from the head's PATH
             "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"},
    )
    address = f"127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        probe = subprocess.run(
            [sys.executable, "-c", f"import ray; ray.init(address='{address}', log_to_driver=False); print('up')"],
            capture_output=True, text=True, timeout=60, env=os.environ.copy(), check=False,
        )
        if "up" in probe.stdout:
            break
        if head.poll() is not None:
            raise RuntimeError(f"ray head exited: {logs.read_text()[-2000:]}")
        time.sleep(1)
    else:
        raise RuntimeError(f"ray head did not come up: {logs.read_text()[-2000:]}")
    yield address, f"http://127.0.0.1:{dashboard_port}", f"http://127.0.0.1:{metrics_port}/metrics"
    os.killpg(head.pid, signal.SIGTERM)
    try:
        head.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(head.pid, signal.SIGKILL)
    shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def ray_address(ray_head: tuple[str, str, str]) -> str:
    return ray_head[0]


@pytest.fixture(scope="session")
def ray_metrics(ray_head: tuple[str, str, str]) -> str:
    """The session head's Prometheus endpoint."""
    return ray_head[2]


@pytest.fixture(scope="session")
def ray_dashboard(ray_head: tuple[str, str, str]) -> str:
    """The session head's dashboard URL, once its job server answers."""
    import urllib.error
    import urllib.request

    url = ray_head[1]
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/api/version", timeout=5) as response:
                if response.status == 200:
                    return url
        except urllib.error.HTTPError as exc:
            if exc.code in (401, 403):  # up, and asking for Ray's auth token
                return url
            time.sleep(1)
        except OSError:
            time.sleep(1)
    raise RuntimeError(f"the Ray dashboard at {url} never answered")


def git(cwd: Path, *args: str) -> str:
    """A git command in ``cwd`` (no hooks, a test identity); its output, stripped."""
    return subprocess.run([*GIT, *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def commit_files(root: Path, files: dict[str, str], message: str = "Initial import") -> Path:
    """A new git repository at ``root`` with ``files`` committed on main."""
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    git(root, "add", "-A")
    git(root, "commit", "-qm", message)
    return root


def make_sample_repo(target: Path) -> Path:
    """A copy of the demo's sample project, committed to a fresh git repository."""
    return create_sample_project(target)


@pytest.fixture
def user_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty user config dir, so that the developer's own config never leaks into a test."""
    home = tmp_path / "user-config"
    home.mkdir()
    monkeypatch.setenv("AIGENTFLOW_CONFIG_HOME", str(home))
    return home


@pytest.fixture
def sample_repo(tmp_path: Path, user_config: Path) -> Path:
    """The sample project, committed and initialised (`aigentflow init`)."""
    repo = make_sample_repo(tmp_path / "project")
    from aigentflow.cli.project_cmd import initialise

    initialise(repo)
    return repo


def cli_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "AIGENTFLOW_FAULTS"}  # faults only where a test asks
    env["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
    env.update(extra)
    return env


def aigentflow(*args: str, cwd: Path, timeout: float = 240, env: dict[str, str] | None = None,
               input: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run the installed `aigentflow` command as a user would."""
    return subprocess.run(
        [_bin("aigentflow"), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
        env=env or cli_env(), input=input, check=False,
    )
