"""Metrics: recorded in a Ray actor and read back from Ray's Prometheus endpoint, as a scraper would;
and silent no-ops in a process without Ray. The Ray test starts a head of its own (with a metrics
port) and drives it from a subprocess: the pytest process never connects to Ray."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from aigentflow.cluster.env import prepare_ray_environment

REPO = Path(__file__).resolve().parents[1]
SCRAPE_TIMEOUT_S = 60


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _python(code: str, timeout: float = 60, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=timeout, cwd=REPO, check=False, env=env or os.environ.copy())


def _scrape(port: int) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            return response.read().decode()
    except OSError:
        return ""


def _ray_env() -> dict[str, str]:
    env = os.environ.copy()
    prepare_ray_environment("127.0.0.1", env)
    return env


@dataclass
class MetricsHead:
    address: str
    metrics_port: int


@pytest.fixture(scope="module")
def metrics_head() -> Iterator[MetricsHead]:
    """A Ray head of this module's own, with its Prometheus endpoint on a free loopback port."""
    gcs_port, metrics_port = _free_port(), _free_port()
    temp_dir = tempfile.mkdtemp(prefix="af-metrics-")  # short: Ray's socket paths live under it
    log_path = Path(temp_dir) / "head.log"
    env = {**_ray_env(), "RAY_USAGE_STATS_ENABLED": "0", "RAY_GRACEFUL_SHUTDOWN_DRAIN_TIMEOUT_S": "0",
           # Workers export every 10 s by default; every second keeps the test short.
           "RAY_metrics_report_interval_ms": "1000"}
    with log_path.open("w") as log:
        head = subprocess.Popen(
            [str(Path(sys.executable).parent / "ray"), "start", "--head", "--block", "--node-ip-address=127.0.0.1",
             f"--port={gcs_port}", f"--metrics-export-port={metrics_port}", "--include-dashboard=false",
             f"--ray-client-server-port={_free_port()}", f"--dashboard-agent-listen-port={_free_port()}",
             f"--temp-dir={temp_dir}", "--disable-usage-stats", "--num-cpus=1"],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True, env=env,
        )
    try:
        deadline = time.monotonic() + 60
        while not _scrape(metrics_port):  # the metrics agent answers once the node is up
            if head.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"ray head did not come up: {log_path.read_text()[-2000:]}")
            time.sleep(0.3)
        yield MetricsHead(f"127.0.0.1:{gcs_port}", metrics_port)
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
            head.wait(timeout=10)
        shutil.rmtree(temp_dir, ignore_errors=True)


RECORDING_DRIVER = """
    from aigentflow.cluster.env import prepare_ray_environment
    prepare_ray_environment({address!r})
    import ray

    ray.init(address={address!r}, log_to_driver=False)

    @ray.remote(num_cpus=0)
    class Recorder:
        def record(self):
            from aigentflow.cluster import metrics
            metrics.record_transition("CREATED", "ANALYZING")
            metrics.record_transition("ANALYZING", "PLANNING")
            metrics.record_run_finished("COMPLETED")
            metrics.record_agent_call("analyst", "ok", 1.5)
            metrics.record_agent_call("analyst", "ok", 2.0)
            metrics.record_agent_call("planner", "failed", 0.2)
            metrics.record_model_call("replay-demo", "ok", 120, 30, 0.0015, seconds=0.4)
            metrics.record_model_call("replay-demo", "transient_error", 0, 0, 0.0, seconds=0.05)
            metrics.record_step("analyze", 2.0)
            metrics.record_dropped_spans(3)
            metrics.record_dropped_spans(0)
            # Bad values are dropped, never raised into the caller.
            metrics.record_model_call(None, "ok", "many", -5, float("nan"), seconds=-1)
            metrics.record_step("plan", object())
            return metrics.is_active()

    print("active", ray.get(Recorder.remote().record.remote()), flush=True)
"""


def _samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """Prometheus text as {sample name: [(labels, value)]} (HELP/TYPE lines skipped)."""
    from prometheus_client.parser import text_string_to_metric_families

    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


def _total(samples: dict[str, list[tuple[dict[str, str], float]]], name: str, **labels: str) -> float:
    """The sum over Ray's own labels (WorkerId, ...) of the series matching ``labels``."""
    return sum(value for have, value in samples.get(name, []) if all(have.get(k) == v for k, v in labels.items()))


@pytest.mark.ray
def test_recorded_metrics_reach_the_prometheus_endpoint(metrics_head: MetricsHead) -> None:
    driver = _python(RECORDING_DRIVER.format(address=metrics_head.address), env=_ray_env())
    assert "active True" in driver.stdout, driver.stderr[-3000:]

    deadline = time.monotonic() + SCRAPE_TIMEOUT_S
    text = _scrape(metrics_head.metrics_port)
    # The last metric recorded is the last to be waited for.
    while "ray_aigentflow_dropped_spans_total{" not in text and time.monotonic() < deadline:
        time.sleep(0.5)
        text = _scrape(metrics_head.metrics_port)
    samples = _samples(text)

    assert _total(samples, "ray_aigentflow_agent_calls_total", role="analyst", outcome="ok") == 2
    assert _total(samples, "ray_aigentflow_agent_calls_total", role="planner", outcome="failed") == 1
    assert _total(samples, "ray_aigentflow_run_transitions_total", from_state="CREATED", to_state="ANALYZING") == 1
    assert _total(samples, "ray_aigentflow_run_transitions_total", to_state="PLANNING") == 1
    assert _total(samples, "ray_aigentflow_runs_finished_total", state="COMPLETED") == 1
    assert _total(samples, "ray_aigentflow_model_calls_total", model="replay-demo", outcome="ok") == 1
    assert _total(samples, "ray_aigentflow_model_calls_total", model="replay-demo", outcome="transient_error") == 1
    assert _total(samples, "ray_aigentflow_model_tokens_total", model="replay-demo", direction="input") == 120
    assert _total(samples, "ray_aigentflow_model_tokens_total", model="replay-demo", direction="output") == 30
    assert _total(samples, "ray_aigentflow_model_cost_usd_total", model="replay-demo") == pytest.approx(0.0015)
    assert _total(samples, "ray_aigentflow_dropped_spans_total") == 3
    # The bad call still counts as a call (its model tag becomes "unknown"); its bad values do not.
    assert _total(samples, "ray_aigentflow_model_calls_total", model="unknown", outcome="ok") == 1
    assert _total(samples, "ray_aigentflow_model_tokens_total", model="unknown") == 0

    assert _total(samples, "ray_aigentflow_step_seconds_count", step="analyze") == 1
    assert _total(samples, "ray_aigentflow_step_seconds_bucket", step="analyze", le="1.0") == 0
    assert _total(samples, "ray_aigentflow_step_seconds_bucket", step="analyze", le="2.5") == 1
    assert _total(samples, "ray_aigentflow_step_seconds_bucket", step="analyze", le="600.0") == 1
    assert _total(samples, "ray_aigentflow_agent_call_seconds_count", role="analyst", outcome="ok") == 2
    assert _total(samples, "ray_aigentflow_model_call_seconds_count", model="replay-demo") == 2
    assert "# HELP ray_aigentflow_agent_calls_total Agent invocations by the engine" in text


def test_without_ray_recording_is_a_silent_no_op_and_ray_is_never_imported() -> None:
    checked = _python("""
        import sys
        from aigentflow.cluster import metrics
        print("imported ray", "ray" in sys.modules)
        metrics.record_transition("CREATED", "ANALYZING")
        metrics.record_run_finished("FAILED")
        metrics.record_agent_call("analyst", "ok", 1.0)
        metrics.record_model_call("m", "error", 1, 2, 0.5, seconds=1.0)
        metrics.record_step("analyze", 1.0)
        metrics.record_dropped_spans(2)
        print("active", metrics.is_active())
        print("imported ray", "ray" in sys.modules)
    """)
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.split("\n")[:3] == ["imported ray False", "active False", "imported ray False"]
    assert checked.stderr == ""


def test_with_ray_imported_but_not_initialised_recording_is_a_no_op() -> None:
    checked = _python("""
        from aigentflow.cluster.env import prepare_ray_environment
        prepare_ray_environment("127.0.0.1")
        import ray
        from aigentflow.cluster import metrics
        metrics.record_agent_call("analyst", "ok", 1.0)
        metrics.record_dropped_spans(1)
        print("active", metrics.is_active(), "initialised", ray.is_initialized())
    """, env=_ray_env())
    assert checked.returncode == 0, checked.stderr
    assert "active False initialised False" in checked.stdout


def test_every_metric_is_documented() -> None:
    from aigentflow.cluster.metrics import SPECS

    doc = (REPO / "docs" / "metrics.md").read_text()
    missing = [spec.exported_name for spec in SPECS if f"`{spec.exported_name}`" not in doc]
    assert missing == []
