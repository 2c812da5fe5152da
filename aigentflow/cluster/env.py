"""What is known of a Ray address before Ray is imported: the environment Ray reads at import time, and
whether anything answers there. The lowest layer of ``aigentflow.cluster.head``: ``head`` (the cluster
`aigentflow cluster up` starts) and ``connect`` (reaching Ray) both use it; it imports neither."""

from __future__ import annotations

import os

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
