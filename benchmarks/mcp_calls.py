"""What an MCP tool call costs through aigentflow's hub, against the published ``mcp-server-time``.

Starts the server (stdio) through ``McpHub`` and measures: the first use (process start, handshake,
tool listing), then N ``convert_time`` calls one after another (median and p95 wall time), then N
calls from 8 threads at once (wall time of the batch, calls per second), and ``close()``. No Ray, no
model: this is the fixed cost an agent's tool call adds on top of the tool's own work.

``python benchmarks/mcp_calls.py [--calls 50]`` (a few seconds). Prints one JSON line:
{"benchmark": "mcp_calls", "start_s": ..., "call_median_ms": ..., "call_p95_ms": ..., ...}.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from statistics import median, quantiles

from aigentflow.mcp.client import McpHub
from aigentflow.mcp.config import ServerConfig

ARGUMENTS = {"source_timezone": "UTC", "time": "12:00", "target_timezone": "Asia/Tokyo"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=50)
    args = parser.parse_args()
    command = shutil.which("mcp-server-time", path=str(Path(sys.executable).parent)) or shutil.which("mcp-server-time")
    if command is None:
        raise SystemExit("mcp-server-time is not installed: pip install '.[test]'")
    config = ServerConfig(name="time", transport="stdio", command=command, args=("--local-timezone", "UTC"))
    hub = McpHub({"time": config})
    try:
        started = time.perf_counter()
        tools = hub.tools("time")
        start_s = time.perf_counter() - started
        times = []
        for _ in range(args.calls):
            began = time.perf_counter()
            result = hub.call("time", "convert_time", ARGUMENTS)
            times.append(time.perf_counter() - began)
            if not result.ok:
                raise SystemExit(f"the call failed: {result.error or result.text}")
        with ThreadPoolExecutor(max_workers=8) as pool:
            began = time.perf_counter()
            results = list(pool.map(lambda _: hub.call("time", "convert_time", ARGUMENTS), range(args.calls)))
            batch_s = time.perf_counter() - began
    finally:
        began = time.perf_counter()
        hub.close()
        close_s = time.perf_counter() - began
    print(json.dumps({
        "benchmark": "mcp_calls", "server": "mcp-server-time", "tools": len(tools), "calls": args.calls,
        "start_s": round(start_s, 3), "call_median_ms": round(median(times) * 1000, 2),
        "call_p95_ms": round(quantiles(times, n=20)[-1] * 1000, 2),
        "parallel_8_batch_s": round(batch_s, 3), "parallel_calls_per_s": round(args.calls / batch_s, 1),
        "parallel_ok": sum(1 for r in results if r.ok), "close_s": round(close_s, 3),
    }))


if __name__ == "__main__":
    main()
