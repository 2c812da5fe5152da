"""The fault-point hook crash tests use (``aigentflow.faults``): off unless a plan is installed, the
``AIGENTFLOW_FAULTS`` syntax, a malformed plan refused. None of these need Ray."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from aigentflow import faults
from aigentflow.exceptions import UsageError
from tests.conftest import DEMO_REQUEST, aigentflow, cli_env


@pytest.fixture(autouse=True)
def _faults_off() -> Iterator[None]:
    yield
    faults.install(None)


def test_points_are_off_by_default_and_the_environment_alone_turns_nothing_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert faults.point("merge.after-sync") is None and faults.point("engine.transition", 1) is None
    assert not faults.enabled("build.force-remote")
    # Only the plan installed in a process counts: a point never reads the environment.
    monkeypatch.setenv(faults.ENV, "build.force-remote")
    assert not faults.enabled("build.force-remote")
    assert faults.from_environment().faults == (faults.Fault("build.force-remote"),)


def test_the_syntax_and_install_replacing_the_plan() -> None:
    plan = faults.parse(" kill-driver@engine.transition:03 , kill-self@merge.after-sync,build.force-remote ",
                        driver_pid=4242)
    assert plan.faults == (faults.Fault("engine.transition", "kill-driver", "3"),
                           faults.Fault("merge.after-sync", "kill-self"), faults.Fault("build.force-remote"))
    assert plan.driver_pid == 4242 and plan
    assert not faults.parse("") and faults.parse("").driver_pid is None
    faults.install(plan)
    assert faults.enabled("build.force-remote")
    faults.point("engine.transition", 2)  # another transition, another step: nothing fires
    faults.point("engine.step", "merge")
    faults.install(faults.parse("kill-self@merge.before-sync"))
    assert not faults.enabled("build.force-remote")
    faults.install(None)
    faults.point("merge.before-sync")


@pytest.mark.parametrize("text, says", [
    ("kill-self", "unknown switch 'kill-self'"),
    ("force-remote-build", "unknown switch"),
    ("merge.after-sync", "say what happens there, e.g. kill-self@merge.after-sync"),
    ("explode@merge.after-sync", "unknown action 'explode'"),
    ("kill-self@merge.nowhere", "unknown point 'merge.nowhere'"),
    ("kill-self@build.force-remote", "a switch takes no action"),
    ("kill-self@merge.after-sync:2", "merge.after-sync takes no argument"),
    ("kill-driver@engine.transition", "needs its argument: kill-driver@engine.transition:N"),
    ("kill-driver@engine.step:", "needs its argument"),
    ("kill-driver@engine.transition:0", "a whole number from 1, not '0'"),
    ("build.force-remote,kill-driver@engine.transition:three", "not 'three'"),
])
def test_a_malformed_plan_is_refused_with_the_entry_named(text: str, says: str) -> None:
    with pytest.raises(UsageError, match="AIGENTFLOW_FAULTS") as refused:
        faults.parse(text)
    assert says in str(refused.value)
    assert "ACTION@POINT[:ARG]" in str(refused.value) and "kill-driver, kill-self" in str(refused.value)


FIRING = textwrap.dedent("""
    from aigentflow import faults
    faults.install(faults.from_environment())  # this process parsed the plan: it is the driver
    for n in (1, 2, 3):
        faults.point("engine.transition", n, before=lambda: print("flushed", flush=True))
        print("after transition", n, flush=True)
""")


@pytest.mark.parametrize("plan", ["kill-driver@engine.transition:2", "kill-self@engine.transition:2"])
def test_a_kill_point_fires_exactly_there_after_its_before_callback(plan: str) -> None:
    child = subprocess.run([sys.executable, "-c", FIRING], capture_output=True, text=True, timeout=60, check=False,
                           env={**os.environ, faults.ENV: plan})
    assert child.returncode == -signal.SIGKILL, child.stderr
    assert child.stdout.splitlines() == ["after transition 1", "flushed"]


def test_run_with_a_malformed_plan_exits_2_and_records_nothing(sample_repo: Path) -> None:
    refused = aigentflow("run", DEMO_REQUEST, "--model", "replay/demo", cwd=sample_repo,
                         env=cli_env(AIGENTFLOW_FAULTS="kill-driver@transition:3"))
    assert refused.returncode == 2, refused.stderr + refused.stdout
    assert "AIGENTFLOW_FAULTS" in refused.stderr and "unknown point 'transition'" in refused.stderr
    listing = aigentflow("runs", "--json", cwd=sample_repo)
    assert listing.returncode == 0 and json.loads(listing.stdout) == []
