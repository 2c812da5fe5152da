"""Reaching Ray: a given address, ``RAY_ADDRESS``, a live local cluster, or a new local instance.

Everything here runs before or around the first ``import ray``: Ray reads some of its settings
from the environment at import time.
"""

from __future__ import annotations

import os

from aigentflow.cluster.env import LOOPBACK_HOSTS, _split_host_port, answers, prepare_ray_environment
from aigentflow.exceptions import UsageError


def running_local_cluster() -> str | None:
    """The address of a live cluster started on this machine (`aigentflow cluster up`, else `ray start`).

    Ray itself would try the last recorded address even when that cluster is gone, and retry for
    minutes; only a loopback address that answers is used here.
    """
    import tempfile
    from pathlib import Path

    from aigentflow.cluster.head import recorded_local_cluster

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
