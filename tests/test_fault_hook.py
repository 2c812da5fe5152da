"""The one fault-injection hook (aigentflow/faults.py): off unless AIGENTFLOW_FAULTS turns it on, a clear
error when it is malformed, and the kills it plans happen exactly at their point."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from aigentflow import faults
from aigentflow.exceptions import UsageError

ROOT = Path(__file__).resolve().parent.parent


def test_off_unless_the_variable_is_set() -> None:
    assert faults.from_environment({}) is faults.OFF
    assert not faults.OFF and not faults.OFF.enabled("force-remote-build")
    faults.OFF.point("transition:1")  # a no-op: nothing happens to this process


def test_a_plan_is_parsed_with_every_kind_of_fault() -> None:
    plan = faults.parse("kill-driver@transition:3, kill-self@merge.after-sync,force-remote-build", driver_pid=42)
    assert plan.faults == (faults.Fault("kill-driver", "transition:3"), faults.Fault("kill-self", "merge.after-sync"),
                           faults.Fault("force-remote-build"))
    assert plan.driver_pid == 42 and plan.enabled("force-remote-build")
    assert plan.kills_self_at() == ("merge.after-sync",)
    assert faults.parse(plan.describe()).faults == plan.faults


@pytest.mark.parametrize("text", ["kill-driver", "kill-driver@", "explode@transition:1", "kill-self@Merge Sync",
                                  "force-remote-build@step:x", "kill-driver@transition:x"])
def test_a_malformed_plan_is_refused_naming_the_item(text: str) -> None:
    with pytest.raises(UsageError, match=f"AIGENTFLOW_FAULTS has '{text}', which is not a fault"):
        faults.parse(text)


def _python(code: str, **env: str) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k != faults.ENV}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60,
                          env={**clean, **env}, cwd=ROOT, check=False)


def test_kill_self_kills_the_process_that_reaches_the_point_and_only_there() -> None:
    code = ("from aigentflow import faults\nfaults.point('merge.before-sync')\nprint('past before-sync', flush=True)\n"
            "faults.point('merge.after-sync')\nprint('past after-sync')")
    killed = _python(code, AIGENTFLOW_FAULTS="kill-self@merge.after-sync")
    assert killed.returncode == -signal.SIGKILL and killed.stdout == "past before-sync\n"
    untouched = _python(code)
    assert untouched.returncode == 0 and "past after-sync" in untouched.stdout


def test_kill_driver_kills_the_driver_then_stops_the_caller_as_if_it_had_died() -> None:
    driver = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        plan = faults.parse("kill-driver@step:plan", driver_pid=driver.pid)
        flushed: list[str] = []
        plan.point("step:analyze", before=lambda: flushed.append("analyze"))
        assert driver.poll() is None and flushed == [], "another point: nothing happens"
        with pytest.raises(faults.FaultInjected, match="step:plan"):
            plan.point("step:plan", before=lambda: flushed.append("plan"))
        assert driver.wait(timeout=10) == -signal.SIGKILL and flushed == ["plan"]
    finally:
        if driver.poll() is None:
            driver.kill()


def test_no_production_module_reads_a_test_variable() -> None:
    offenders = [str(path.relative_to(ROOT)) for top in ("aigentflow", "actors", "jobs")
                 for path in (ROOT / top).rglob("*.py") if "AIGENTFLOW_TEST_" in path.read_text()]
    assert offenders == []
