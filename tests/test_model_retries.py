"""Transient model failures (rate limits, 5xx, timeouts), injected by the replay cassette through
real litellm: bounded retries with backoff, then a clear failure, never past the call budget."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
from pydantic import BaseModel

from aigentflow.exceptions import ModelError, RunFailure
from aigentflow.models.client import ModelClient
from aigentflow.models.spec import ModelSpec


class Answer(BaseModel):
    value: int


MESSAGES = [{"role": "user", "content": "answer"}]


def client(entries: list[dict], *, budget: int | None = None, run_id: str = "", **spec) -> ModelClient:
    """A client of a script of replies (a lenient cassette) with injected failures."""
    cassette = {"version": 1, "match": "lenient", "entries": entries}
    return ModelClient(ModelSpec(name=f"replay/r-{uuid.uuid4().hex[:8]}", cassette=cassette, **spec),
                       budget=budget, run_id=run_id or uuid.uuid4().hex)


def flaky(error: str, times: int | None) -> dict:
    entry = {"role": "agent", "step": "work", "attempt": 1, "error": error, "response": {"value": 7}}
    if times is not None:
        entry["error_times"] = times
    return entry


@pytest.mark.parametrize("error", ["rate_limit", "server_error", "timeout"])
def test_a_transient_failure_is_retried_with_backoff_until_it_answers(error: str) -> None:
    model = client([flaky(error, times=2)], retry_backoff_s=0.05, max_transient_retries=3)
    started = time.monotonic()
    result = model.call_structured(MESSAGES, Answer, role="agent", step="work")
    assert result.output == Answer(value=7)
    assert [c.transient for c in result.calls] == [True, True, False]
    assert all(c.error for c in result.calls[:2])
    assert model.calls_made == 3
    assert time.monotonic() - started >= 0.05 * 0.8 * (1 + 2), "it waited, doubling each time"


def test_a_failure_that_persists_fails_clearly_after_bounded_tries() -> None:
    model = client([flaky("server_error", times=None)], retry_backoff_s=0.01, max_transient_retries=2)
    with pytest.raises(ModelError,
                       match=r"kept failing transiently \(ServiceUnavailableError\) after 3 tries") as failure:
        model.call_structured(MESSAGES, Answer, role="agent", step="work")
    assert model.calls_made == 3
    assert len(failure.value.calls) == 3 and all(c.transient for c in failure.value.calls)


def test_retries_never_exceed_the_call_budget() -> None:
    model = client([flaky("rate_limit", times=None)], budget=2, retry_backoff_s=0.01, max_transient_retries=5)
    with pytest.raises(ModelError, match="budget is used up"):
        model.call_structured(MESSAGES, Answer, role="agent", step="work")
    assert model.calls_made == 2


def test_error_times_count_per_run() -> None:
    entries = [flaky("rate_limit", times=1)]
    first = client(entries, retry_backoff_s=0.01, run_id="run-a")
    assert first.call_structured(MESSAGES, Answer, role="agent", step="work").output.value == 7
    assert first.calls_made == 2
    again = ModelClient(first.spec, run_id="run-b")
    assert again.call_structured(MESSAGES, Answer, role="agent", step="work").output.value == 7
    assert again.calls_made == 2, "a new run meets the injected failure again"


def test_a_run_rides_out_rate_limits_and_counts_every_try(sample_repo: Path) -> None:
    import json
    from importlib import resources

    from tests.test_engine import drive, start, store_of

    cassette = json.loads((resources.files("aigentflow") / "cassettes" / "demo.json").read_text())
    for entry in cassette["entries"]:
        if entry["role"] == "architect":
            entry.update(error="rate_limit", error_times=2)
    target = sample_repo / ".aigentflow" / "cassettes" / "flaky.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(cassette))
    paths, run, spec = start(sample_repo, **{"model.name": "replay/flaky", "model.retry_backoff_s": "0.01"})
    assert drive(paths, run, spec).state == "COMPLETED"
    store = store_of(paths)
    architect = next(s for s in store.steps(run.id) if s.step == "architect")
    assert architect.model_calls == 3
    assert store.get_run(run.id).model_calls == 1 + 2 + 3

    paths, run, spec = start(sample_repo, **{"model.name": "replay/flaky", "model.retry_backoff_s": "0.01",
                                             "model.max_calls_per_run": "4"})
    with pytest.raises(RunFailure, match="budget"):
        drive(paths, run, spec)
    assert store.get_run(run.id).model_calls <= 4
