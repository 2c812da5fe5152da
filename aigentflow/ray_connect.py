"""Reaching Ray: a given address, ``RAY_ADDRESS``, a live local cluster, or a new local instance.

Everything here runs before or around the first ``import ray``: Ray reads some of its settings
from the environment at import time.
"""

from __future__ import annotations

import os

from aigentflow.exceptions import UsageError

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1", "[::1]")


def prepare_ray_environment(address: str | None, env: dict[str, str] | None = None) -> None:
    """Set what Ray reads at import time, before the first ``import ray``.

    - A local cluster stays on loopback: Ray otherwise turns ``127.0.0.1`` into the machine's
      "reachable" address and connects there (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`` keeps the
      loopback address; it only matters for addresses on this machine).
    - Ray's token authentication, as Ray configured it: when ``~/.ray/auth_token`` exists, the client
      presents it (``RAY_AUTH_MODE=token``), which an explicit ``--address`` otherwise does not.
    """
    from pathlib import Path

    env = os.environ if env is None else env
    target = address or env.get("RAY_ADDRESS") or ""
    host = target.split("://")[-1].rsplit(":", 1)[0] if target else ""
    if not target or host in LOOPBACK_HOSTS:
        env.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    token_file = Path(env.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")
    if token_file.exists() or env.get("RAY_AUTH_TOKEN"):
        env.setdefault("RAY_AUTH_MODE", "token")


def _split_host_port(address: str) -> tuple[str, int] | None:
    host, _, port = address.split("://")[-1].rstrip("/").rpartition(":")
    return (host.strip("[]"), int(port)) if host and port.isdigit() else None


def answers(address: str, timeout_s: float = 3.0) -> bool:
    """Whether something listens at the GCS address (one TCP connect, no Ray involved)."""
    import socket

    parsed = _split_host_port(address)
    if parsed is None:
        return False
    try:
        with socket.create_connection(parsed, timeout=timeout_s):
            return True
    except OSError:
        return False


def running_local_cluster() -> str | None:
    """The address of a live cluster started on this machine (`aigentflow cluster up`, else `ray start`).

    Ray itself would try the last recorded address even when that cluster is gone, and retry for
    minutes; only a loopback address that answers is used here.
    """
    import tempfile
    from pathlib import Path

    from aigentflow.cluster import recorded_local_cluster

    recorded = recorded_local_cluster()  # started by `aigentflow cluster up`
    if recorded:
        return recorded
    record = Path(tempfile.gettempdir()) / "ray" / "ray_current_cluster"
    try:
        address = record.read_text().strip().splitlines()[0]
    except (OSError, IndexError):
        return None
    parsed = _split_host_port(address)
    if parsed is None or parsed[0] not in LOOPBACK_HOSTS:
        return None
    return address if answers(address, timeout_s=0.5) else None


def connect_ray(address: str | None, *, include_dashboard: bool = False) -> None:
    """Connect to the cluster at ``address`` (or ``RAY_ADDRESS``, or a live local cluster), else start
    a local single-node Ray bound to 127.0.0.1."""
    prepare_ray_environment(address)
    import ray

    if ray.is_initialized():
        return
    address = address or os.environ.get("RAY_ADDRESS") or running_local_cluster()
    if address and not address.startswith(("ray://", "http://", "https://")) and not answers(address):
        raise UsageError(f"nothing answers at the Ray address {address}; check it (`ray status` on the head "
                         "node), or leave --address out to start Ray locally.")
    try:
        if address:
            ray.init(address=address, namespace="aigentflow", log_to_driver=False)
        else:
            ray.init(
                address="local", _node_ip_address="127.0.0.1", include_dashboard=include_dashboard,
                namespace="aigentflow", log_to_driver=False,
            )
    except (ConnectionError, TimeoutError, RuntimeError, ValueError) as exc:
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        raise UsageError(f"could not connect to {where}: {exc}. Check the address, or leave --address out "
                         "to start Ray locally.") from None
