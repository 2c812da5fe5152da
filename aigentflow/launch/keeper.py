"""The run host's keeper: a small driver process that owns a node's run host on a running cluster.

A Ray job whose driver has exited keeps its detached actors, but not the worker processes of their
tasks: Ray stops them as soon as they are idle, so every build, test and lint task of a later run
would start a new process (about 0.7 s each). The first `aigentflow run` (``resume``, ``demo``,
``jobs/run.py``) on a node of a cluster it did not start itself therefore starts this keeper (its
own session, so that it outlives that run): it creates the node's run host in its own job, which
stays alive, and exits when the host or the cluster goes away. A driver that started its own local
Ray creates the host itself (that Ray ends with the driver anyway), as does a library caller of
``launch.driver.drive`` that connected on its own.

    python -m aigentflow.launch.keeper GCS_ADDRESS
"""

from __future__ import annotations

import os
import sys
import time

PING_INTERVAL_S = 10.0


def main(argv: list[str]) -> int:
    from aigentflow.cluster.connect import prepare_ray_environment

    address = argv[0]
    prepare_ray_environment(address)
    import ray

    ray.init(address=address, namespace="aigentflow", log_to_driver=False)
    from actors.factory import run_host_actor, run_host_actor_name

    name = run_host_actor_name(ray.get_runtime_context().get_node_id())
    try:
        ray.get_actor(name, namespace="aigentflow")
        return 0  # another keeper (or driver) was first: its host serves this node
    except ValueError:
        pass
    host = run_host_actor()
    while True:
        try:
            ray.get(host.ping.remote(), timeout=60)
        except Exception:  # noqa: BLE001 - the host or the cluster is gone: nothing left to keep
            os._exit(0)  # not ray.shutdown(): with the cluster gone it could wait on it
        time.sleep(PING_INTERVAL_S)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
