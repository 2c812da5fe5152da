"""A local Ray head that outlives one command, so that runs connect in about a second.

``up`` starts ``ray start --head --block`` as a child in a session of its own. Every process of
that cluster (GCS, raylet, dashboard, agents, workers: workers change their process group but not
their session) then shares the session id, which is the pid of the ``ray start`` process. ``down``
signals exactly that session's processes, read from /proc, never other Ray instances on the
machine. ``--block`` also makes Ray tear the cluster down when one of its components dies.

The cluster is recorded in ``user_config_dir()/cluster.json``; ``status``, ``dashboard_url`` and
``recorded_local_cluster`` read that file and probe a TCP port, without importing Ray.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from aigentflow.exceptions import UsageError
from aigentflow.project.paths import user_config_dir

HOST = "127.0.0.1"
STATE_FILENAME = "cluster.json"
START_TIMEOUT_S = 90.0
_started: dict[int, subprocess.Popen[bytes]] = {}  # children of this process, reaped by ``down``


@dataclass
class ClusterInfo:
    """A recorded local Ray head; ``running`` is whether it answers now."""

    gcs_address: str
    dashboard_url: str | None
    session_id: int
    temp_dir: str
    log_file: str
    started_at: float
    running: bool = False

    @property
    def gcs_port(self) -> int:
        return int(self.gcs_address.rsplit(":", 1)[1])

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def default_state_file() -> Path:
    """Where the cluster started by ``aigentflow cluster up`` is recorded."""
    return user_config_dir() / STATE_FILENAME


def free_port() -> int:
    """A TCP port nothing listens on at the moment, on loopback."""
    with socket.socket() as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def port_answers(port: int, timeout_s: float = 0.5) -> bool:
    """Whether something accepts a TCP connection at 127.0.0.1:``port``."""
    from aigentflow.cluster.env import answers

    return answers(f"{HOST}:{port}", timeout_s)


def session_pids(session_id: int) -> list[int] | None:
    """Live pids whose session is ``session_id``; None where there is no /proc (then: its process group)."""
    if not Path("/proc/self/stat").exists():
        try:
            os.killpg(session_id, 0)
            return [-session_id]
        except OSError:
            return []
    pids = []
    for entry in os.listdir("/proc"):
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            if int(fields[3]) == session_id and fields[0] != "Z":
                pids.append(int(entry))
        except (OSError, IndexError, ValueError):
            continue
    return pids


def _owned_session(session_id: int, gcs_port: int) -> list[int]:
    """The session's live pids, if one of them is the cluster at ``gcs_port`` (guards against pid reuse)."""
    pids = session_pids(session_id) or []
    for pid in pids:
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            return pids if pid < 0 else []
        if any(arg.endswith((f"port={gcs_port}", f"{HOST}:{gcs_port}")) for arg in cmdline.split()):
            return pids
    return []


def _read_state(state_file: Path) -> ClusterInfo | None:
    try:
        data = json.loads(state_file.read_text())
        return ClusterInfo(**{k: v for k, v in data.items() if k != "running"})
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError) as exc:
        raise UsageError(f"{state_file} is not a cluster record ({exc}); delete it, then run "
                         "`aigentflow cluster up` again.") from None


def status(state_file: Path | None = None) -> ClusterInfo | None:
    """The recorded cluster, with ``running`` set; None when none was recorded."""
    info = _read_state(state_file or default_state_file())
    if info is not None:
        info.running = port_answers(info.gcs_port) and bool(_owned_session(info.session_id, info.gcs_port))
    return info


def recorded_local_cluster(state_file: Path | None = None) -> str | None:
    """The GCS address of the recorded cluster if it answers on loopback (one TCP connect), else None."""
    try:
        info = _read_state(state_file or default_state_file())
    except UsageError:
        return None
    return info.gcs_address if info is not None and port_answers(info.gcs_port) else None


def dashboard_url(state_file: Path | None = None) -> str | None:
    """The dashboard of the recorded cluster, if that cluster is running and has one."""
    info = status(state_file)
    return info.dashboard_url if info is not None and info.running else None


def http_status(url: str, timeout_s: float = 2.0) -> int | None:
    """The HTTP status of a GET of ``url``, or None when nothing answers."""
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (OSError, ValueError):
        return None


def _ray_environment() -> dict[str, str]:
    from aigentflow.cluster.env import prepare_ray_environment

    env = dict(os.environ)
    env.pop("RAY_ADDRESS", None)
    prepare_ray_environment(HOST, env)
    env.update(RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S="0", RAY_USAGE_STATS_ENABLED="0")
    return env


def _check_port(port: int | None, option: str) -> int:
    if port is None:
        return free_port()
    if not 0 < port < 65536 or port_answers(port):
        raise UsageError(f"{option} {port} is {'in use' if 0 < port < 65536 else 'not a port'}; "
                         f"pick another, or leave {option} out to use a free one.")
    return port


def up(*, port: int | None = None, dashboard_port: int | None = None, num_cpus: int | None = None,
       include_dashboard: bool = True, temp_dir: str | Path | None = None,
       state_file: Path | None = None) -> ClusterInfo:
    """Start a Ray head on 127.0.0.1 and record it; if the recorded one already runs, return that."""
    state_file = state_file or default_state_file()
    current = status(state_file)
    if current is not None and current.running:
        return current
    if current is not None:  # recorded but not answering: stop what is left of it before replacing it
        _stop_session(current.session_id, current.gcs_port, timeout_s=5.0)
    if num_cpus is not None and num_cpus < 1:
        raise UsageError(f"--num-cpus {num_cpus} must be at least 1.")
    gcs_port, ui_port = _check_port(port, "--port"), _check_port(dashboard_port, "--dashboard-port")
    temp = Path(temp_dir or Path(tempfile.gettempdir()) / "ray").resolve()
    temp.mkdir(parents=True, exist_ok=True)
    state_file.parent.mkdir(parents=True, exist_ok=True)
    log_file = state_file.with_name(f"{state_file.stem}-head.log")
    # Every port that has a fixed default gets a free one: other Ray instances here may hold those.
    command = [
        str(Path(sys.executable).parent / "ray"), "start", "--head", "--block", f"--node-ip-address={HOST}",
        f"--port={gcs_port}", f"--dashboard-host={HOST}", f"--dashboard-port={ui_port}",
        f"--include-dashboard={str(include_dashboard).lower()}", f"--metrics-export-port={free_port()}",
        f"--ray-client-server-port={free_port()}", f"--dashboard-agent-listen-port={free_port()}",
        "--disable-usage-stats", f"--temp-dir={temp}",
    ] + ([f"--num-cpus={num_cpus}"] if num_cpus is not None else [])
    with log_file.open("wb") as log:
        head = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                env=_ray_environment(), start_new_session=True)
    _started[head.pid] = head
    info = ClusterInfo(f"{HOST}:{gcs_port}", f"http://{HOST}:{ui_port}" if include_dashboard else None,
                       head.pid, str(temp), str(log_file), time.time())
    _wait_until_ready(head, info)
    state_file.write_text(json.dumps(info.to_dict(), indent=2) + "\n")
    info.running = True
    return info


def _wait_until_ready(head: subprocess.Popen[bytes], info: ClusterInfo) -> None:
    """Until the GCS answers and the raylet listens; stops the head and explains if it never does."""
    deadline = time.monotonic() + START_TIMEOUT_S
    raylet_sockets = f"session_*_{head.pid}/sockets/raylet"
    while time.monotonic() < deadline and head.poll() is None:
        if port_answers(info.gcs_port, 0.2) and any(Path(info.temp_dir).glob(raylet_sockets)):
            return
        time.sleep(0.1)
    exited = head.poll() is not None
    _stop_session(info.session_id, info.gcs_port)
    tail = Path(info.log_file).read_text(errors="replace").strip().splitlines()[-8:]
    what = f"exited with code {head.returncode}" if exited else f"did not start within {START_TIMEOUT_S:.0f} s"
    raise UsageError(f"`ray start --head` {what}; its output ({info.log_file}) ends with:\n" + "\n".join(tail))


def _stop_session(session_id: int, gcs_port: int, timeout_s: float = 20.0) -> bool:
    """SIGTERM every process of the cluster's session, SIGKILL what is left after ``timeout_s``."""
    members = _owned_session(session_id, gcs_port)
    if not members:
        return False
    for sig, wait_s in ((signal.SIGTERM, timeout_s), (signal.SIGKILL, 5.0)):
        for pid in members:
            try:
                if pid < 0:  # no /proc: the head's process group stands for the session
                    os.killpg(-pid, sig)
                else:
                    os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait_s
        while members and time.monotonic() < deadline:
            time.sleep(0.1)
            members = session_pids(session_id) or []
        if not members:
            break
    if session_id in _started:  # reap our own child, the head's `ray start`
        _started.pop(session_id).wait(timeout=5)
    return True


def down(state_file: Path | None = None, timeout_s: float = 20.0) -> bool:
    """Stop the recorded cluster (only its own processes) and forget it; False if none was running."""
    state_file = state_file or default_state_file()
    info = _read_state(state_file)
    if info is None:
        return False
    stopped = _stop_session(info.session_id, info.gcs_port, timeout_s)
    current_cluster = Path(info.temp_dir) / "ray_current_cluster"
    try:
        if current_cluster.read_text().strip().splitlines()[0] == info.gcs_address:
            current_cluster.unlink()
    except (OSError, IndexError):
        pass
    state_file.unlink(missing_ok=True)
    return stopped
