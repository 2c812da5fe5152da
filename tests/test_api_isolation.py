"""Tenant isolation of the HTTP API, as a hypothesis state machine: tenants get tokens, tokens are revoked,
runs are recorded (through the real SQLite store's API), and every endpoint is asked with one tenant's token
for every tenant's runs. A tenant's token reads its own runs and nothing else: another tenant's run id is
the same 404 as an id that never existed, a revoked token is the same 401 as none, and lists, counts, audit
and costs hold only the caller's rows."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, initialize, invariant, rule

from aigentflow.api.app import NOT_FOUND
from aigentflow.api.auth import UNAUTHORIZED
from tests.api_support import auth, client, make_project, new_token, record_run, revoke

TENANTS = ("acme", "globex", "initech")
RUN_PATHS = ("/v1/runs/{id}", "/v1/runs/{id}/events", "/v1/runs/{id}/audit", "/v1/runs/{id}/events?since=1")


class TenantIsolation(RuleBasedStateMachine):
    tokens = Bundle("tokens")
    runs = Bundle("runs")

    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="api-isolation-"))
        self.paths = make_project(self.dir / "project")
        self.api = client(self.paths)
        self.owner: dict[str, str] = {}  # run id -> tenant
        self.requests: dict[str, str] = {}  # run id -> its request (a marker no other tenant may ever see)
        self.cost: dict[str, float] = dict.fromkeys(TENANTS, 0.0)
        self.token_tenant: dict[str, str] = {}
        self.token_id: dict[str, str] = {}
        self.active: dict[str, bool] = {}
        self.token_events: dict[str, int] = dict.fromkeys(TENANTS, 0)

    def teardown(self) -> None:
        self.api.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    # -- what changes ------------------------------------------------------------------------------

    @initialize(target=tokens)
    def first_tokens(self) -> object:
        from hypothesis.stateful import multiple

        return multiple(*(self.create_token(tenant) for tenant in TENANTS))

    @rule(target=tokens, tenant=st.sampled_from(TENANTS))
    def create_token(self, tenant: str) -> str:
        token_id, token = new_token(self.paths, tenant)
        self.token_tenant[token], self.token_id[token], self.active[token] = tenant, token_id, True
        self.token_events[tenant] += 1
        return token

    @rule(token=tokens)
    def revoke_token(self, token: str) -> None:
        if self.active[token]:
            revoke(self.paths, self.token_id[token])
            self.active[token] = False
            self.token_events[self.token_tenant[token]] += 1

    @rule(target=runs, tenant=st.sampled_from(TENANTS), cents=st.integers(0, 500), calls=st.integers(1, 5),
          finish=st.booleans())
    def record(self, tenant: str, cents: int, calls: int, finish: bool) -> str:
        marker = f"{tenant}-request-{len(self.owner)}"
        run = record_run(self.paths, tenant, marker, cost=cents / 100, calls=calls, finish=finish)
        self.owner[run.id], self.requests[run.id] = tenant, marker
        self.cost[tenant] += cents / 100
        return run.id

    # -- what each tenant sees ---------------------------------------------------------------------

    def _foreign_markers(self, tenant: str) -> list[str]:
        return [marker for run_id, marker in self.requests.items() if self.owner[run_id] != tenant]

    def _assert_nothing_foreign(self, tenant: str, text: str) -> None:
        for marker in self._foreign_markers(tenant):
            assert marker not in text, (tenant, marker)
        for run_id, owner in self.owner.items():
            if owner != tenant:
                assert run_id not in text, (tenant, run_id)

    @rule(token=tokens, run_id=runs)
    def read_a_run(self, token: str, run_id: str) -> None:
        tenant = self.token_tenant[token]
        for path in RUN_PATHS:
            response = self.api.get(path.format(id=run_id), headers=auth(token))
            if not self.active[token]:
                assert response.status_code == 401 and response.json() == UNAUTHORIZED
            elif self.owner[run_id] == tenant:
                assert response.status_code == 200, response.text
                self._assert_nothing_foreign(tenant, response.text)
            else:
                assert response.status_code == 404 and response.json() == NOT_FOUND, (path, response.text)

    @rule(token=tokens, made_up=st.from_regex(r"[0-9]{6}-[0-9]{6}-[0-9a-f]{4}", fullmatch=True))
    def read_a_run_that_never_existed(self, token: str, made_up: str) -> None:
        if made_up in self.owner:
            return
        response = self.api.get(f"/v1/runs/{made_up}", headers=auth(token))
        assert response.status_code == (404 if self.active[token] else 401)

    @rule(token=tokens, limit=st.integers(1, 5))
    def list_and_count(self, token: str, limit: int) -> None:
        tenant = self.token_tenant[token]
        responses = [self.api.get(path, headers=auth(token)) for path in
                     (f"/v1/runs?limit={limit}", "/v1/audit", "/v1/costs", "/v1/costs?by=step", "/v1/costs?by=model")]
        if not self.active[token]:
            assert all(r.status_code == 401 and r.json() == UNAUTHORIZED for r in responses)
            return
        listing, audit, costs, by_step, by_model = (r.json() for r in responses)
        own = {run_id for run_id, owner in self.owner.items() if owner == tenant}
        assert listing["count"] == len(own) and len(listing["runs"]) == min(limit, len(own))
        assert {r["id"] for r in listing["runs"]} <= own
        entries = audit["entries"]
        assert {e["run_id"] for e in entries if e["run_id"]} == own
        assert sum(e["event"] == "run.created" for e in entries) == len(own)
        assert sum(e["event"].startswith("token.") for e in entries) == self.token_events[tenant]
        assert {r["run_id"] for r in costs["rows"]} == own and {r["run_id"] for r in by_step["rows"]} == own
        assert abs(costs["total"]["cost_usd"] - self.cost[tenant]) < 1e-6
        assert abs(by_model["total"]["cost_usd"] - self.cost[tenant]) < 1e-6
        for response in responses:
            self._assert_nothing_foreign(tenant, response.text)

    @rule(token=consumes(tokens))
    def forget_a_token(self, token: str) -> None:
        """A token leaves the pool (the client lost it); it stays in the store as it was."""

    @invariant()
    def tokens_are_never_stored(self) -> None:
        data = self.paths.database.read_bytes() + (Path(f"{self.paths.database}-wal").read_bytes()
                                                     if Path(f"{self.paths.database}-wal").exists() else b"")
        for token in list(self.token_tenant)[-3:]:
            assert token.encode() not in data
        assert json.dumps(UNAUTHORIZED).count("agf_") == 0


TenantIsolation.TestCase.settings = settings(max_examples=12, stateful_step_count=25, deadline=None,
                                             suppress_health_check=[HealthCheck.too_slow])
test_tenant_isolation = TenantIsolation.TestCase
