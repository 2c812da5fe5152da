"""The state database's schema, as an ordered list of migrations. Append; never edit a shipped one."""

from __future__ import annotations

MIGRATIONS: list[str] = [
    # 1: projects, runs, the transition log, steps, artifacts, audit, controls.
    """
    CREATE TABLE projects (
        id TEXT PRIMARY KEY,
        tenant_id TEXT NOT NULL DEFAULT 'default',
        name TEXT NOT NULL,
        facts_json TEXT NOT NULL,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE runs (
        id TEXT PRIMARY KEY,
        tenant_id TEXT NOT NULL DEFAULT 'default',
        project_id TEXT NOT NULL REFERENCES projects(id),
        request TEXT NOT NULL,
        model TEXT NOT NULL,
        state TEXT NOT NULL,
        return_to TEXT,
        version INTEGER NOT NULL DEFAULT 0,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        finished_at TEXT,
        error TEXT,
        settings_json TEXT NOT NULL,
        flags_json TEXT NOT NULL,
        owner_pid INTEGER,
        owner_host TEXT,
        heartbeat_at TEXT,
        pause_requested INTEGER NOT NULL DEFAULT 0,
        model_calls INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX runs_by_tenant ON runs(tenant_id, created_at);
    CREATE TABLE transitions (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        tenant_id TEXT NOT NULL DEFAULT 'default',
        run_id TEXT NOT NULL REFERENCES runs(id),
        from_state TEXT,
        to_state TEXT NOT NULL,
        event TEXT NOT NULL,
        reason TEXT,
        at TEXT NOT NULL
    );
    CREATE INDEX transitions_by_run ON transitions(run_id, seq);
    CREATE TRIGGER transitions_append_only_update BEFORE UPDATE ON transitions
        BEGIN SELECT RAISE(ABORT, 'transitions are append-only'); END;
    CREATE TRIGGER transitions_append_only_delete BEFORE DELETE ON transitions
        BEGIN SELECT RAISE(ABORT, 'transitions are append-only'); END;
    CREATE TABLE steps (
        run_id TEXT NOT NULL REFERENCES runs(id),
        step TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        tenant_id TEXT NOT NULL DEFAULT 'default',
        role TEXT NOT NULL,
        state TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('started', 'completed', 'failed')),
        output_json TEXT,
        error TEXT,
        started_at TEXT NOT NULL,
        finished_at TEXT,
        input_tokens INTEGER NOT NULL DEFAULT 0,
        output_tokens INTEGER NOT NULL DEFAULT 0,
        cost_usd REAL NOT NULL DEFAULT 0,
        model_calls INTEGER NOT NULL DEFAULT 0,
        prompt_hashes_json TEXT NOT NULL DEFAULT '[]',
        PRIMARY KEY (run_id, step, attempt)
    );
    CREATE TABLE artifacts (
        run_id TEXT NOT NULL REFERENCES runs(id),
        tenant_id TEXT NOT NULL DEFAULT 'default',
        step TEXT NOT NULL,
        name TEXT NOT NULL,
        path TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        bytes INTEGER NOT NULL,
        created_at TEXT NOT NULL,
        PRIMARY KEY (run_id, name)
    );
    CREATE TABLE audit (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        tenant_id TEXT NOT NULL DEFAULT 'default',
        run_id TEXT,
        event TEXT NOT NULL,
        at TEXT NOT NULL,
        data_json TEXT NOT NULL
    );
    CREATE INDEX audit_by_run ON audit(run_id, seq);
    CREATE TABLE controls (
        tenant_id TEXT NOT NULL DEFAULT 'default',
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        PRIMARY KEY (tenant_id, key)
    );
    """,
    # 2: releases, one row per release tag (`aigentflow release`).
    """
    CREATE TABLE releases (
        id TEXT PRIMARY KEY,
        tenant_id TEXT NOT NULL DEFAULT 'default',
        project_id TEXT NOT NULL REFERENCES projects(id),
        version TEXT NOT NULL,
        tag TEXT NOT NULL UNIQUE,
        commit_sha TEXT NOT NULL,
        changelog TEXT NOT NULL,
        run_ids_json TEXT NOT NULL DEFAULT '[]',
        created_at TEXT NOT NULL
    );
    CREATE INDEX releases_by_tenant ON releases(tenant_id, created_at);
    """,
    # 3: incidents (`aigentflow incidents`), their timelines, the evidence each was detected from, silences; and
    # the indexes detection reads the run store's tables by (time windows).
    """
    CREATE TABLE incidents (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        tenant_id TEXT NOT NULL DEFAULT 'default',
        rule TEXT NOT NULL,
        severity TEXT NOT NULL CHECK (severity IN ('SEV1', 'SEV2', 'SEV3', 'SEV4')),
        status TEXT NOT NULL CHECK (status IN ('open', 'acknowledged', 'resolved')),
        title TEXT NOT NULL,
        dedup_key TEXT NOT NULL,
        count INTEGER NOT NULL DEFAULT 1,
        first_seen TEXT NOT NULL,
        last_seen TEXT NOT NULL,
        acked_by TEXT,
        resolved_at TEXT,
        facts_json TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX incidents_by_key ON incidents(dedup_key, status);
    CREATE INDEX incidents_by_status ON incidents(status, severity);
    CREATE TABLE incident_events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        incident_id INTEGER NOT NULL REFERENCES incidents(id),
        kind TEXT NOT NULL,
        at TEXT NOT NULL,
        actor TEXT,
        route TEXT,
        result TEXT,
        detail TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX incident_events_by_incident ON incident_events(incident_id, seq);
    CREATE TABLE incident_evidence (
        dedup_key TEXT NOT NULL,
        evidence TEXT NOT NULL,
        incident_id INTEGER NOT NULL REFERENCES incidents(id),
        at TEXT NOT NULL,
        PRIMARY KEY (dedup_key, evidence)
    );
    CREATE INDEX runs_by_finished ON runs(finished_at);
    CREATE INDEX steps_by_finished ON steps(finished_at);
    CREATE INDEX audit_by_event ON audit(event, at);
    CREATE INDEX audit_by_at ON audit(at);
    CREATE INDEX transitions_by_at ON transitions(at);
    CREATE TABLE incident_silences (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        rule TEXT NOT NULL,
        until TEXT NOT NULL,
        created_by TEXT,
        reason TEXT NOT NULL DEFAULT '',
        created_at TEXT NOT NULL
    );
    """,
    # 4: GDPR: data subject requests (`aigentflow gdpr export|erase`) and consent records. A subject is only
    # ever kept as its keyed hash (aigentflow/gdpr/subject.py), never in clear.
    """
    CREATE TABLE dsar (
        id TEXT PRIMARY KEY,
        tenant_id TEXT NOT NULL DEFAULT 'default',
        subject_hash TEXT NOT NULL,
        kind TEXT NOT NULL,
        status TEXT NOT NULL CHECK (status IN ('in_progress', 'done', 'failed')),
        requested_at TEXT NOT NULL,
        completed_at TEXT,
        duration_s REAL,
        summary_json TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX dsar_by_subject ON dsar(subject_hash, kind, status);
    CREATE TABLE consent (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        tenant_id TEXT NOT NULL DEFAULT 'default',
        subject_hash TEXT NOT NULL,
        purpose TEXT NOT NULL,
        given INTEGER NOT NULL,
        at TEXT NOT NULL,
        note TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX consent_by_subject ON consent(subject_hash, purpose, seq);
    """,
    # 5: what each model's calls of a step consumed (`aigentflow costs --by model`).
    """
    CREATE TABLE model_usage (
        run_id TEXT NOT NULL REFERENCES runs(id),
        step TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        tenant_id TEXT NOT NULL DEFAULT 'default',
        model TEXT NOT NULL,
        provider TEXT NOT NULL DEFAULT '',
        calls INTEGER NOT NULL DEFAULT 0,
        input_tokens INTEGER NOT NULL DEFAULT 0,
        output_tokens INTEGER NOT NULL DEFAULT 0,
        cost_usd REAL NOT NULL DEFAULT 0,
        PRIMARY KEY (run_id, step, attempt, model)
    );
    CREATE INDEX model_usage_by_tenant ON model_usage(tenant_id, model);
    """,
    # 6: compliance (`aigentflow compliance`): evidence items (each with the sha256 of its exported content, kept
    # under .aigentflow/compliance/evidence/) and attestations (who attested a control, when, until when).
    """
    CREATE TABLE compliance_evidence (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        tenant_id TEXT NOT NULL DEFAULT 'default',
        kind TEXT NOT NULL,
        source TEXT NOT NULL,
        sha256 TEXT NOT NULL,
        recorded_at TEXT,
        collected_at TEXT NOT NULL,
        summary TEXT NOT NULL DEFAULT '',
        UNIQUE (kind, source, sha256)
    );
    CREATE INDEX compliance_evidence_by_kind ON compliance_evidence(kind, collected_at);
    CREATE TABLE compliance_attestations (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        tenant_id TEXT NOT NULL DEFAULT 'default',
        control TEXT NOT NULL,
        attested_by TEXT NOT NULL,
        attested_at TEXT NOT NULL,
        expires_at TEXT,
        note TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX compliance_attestations_by_control ON compliance_attestations(control, attested_at);
    """,
    # 7: tenants (`aigentflow tenants`): the registry ('default' always there, and every tenant runs were already
    # recorded under) and each tenant's quotas (runs, tokens, cost_usd per day/week/month; calls_per_minute, the
    # Model Gateway's rate limit); usage is summed from steps by tenant and finish time (a covering index).
    """
    CREATE TABLE tenants (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
        created_at TEXT NOT NULL
    );
    INSERT INTO tenants (id, name, status, created_at)
        VALUES ('default', 'default', 'active', strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now'));
    INSERT OR IGNORE INTO tenants (id, name, status, created_at)
        SELECT DISTINCT tenant_id, tenant_id, 'active', strftime('%Y-%m-%dT%H:%M:%f+00:00', 'now') FROM runs;
    CREATE TABLE quotas (
        tenant_id TEXT NOT NULL REFERENCES tenants(id),
        kind TEXT NOT NULL CHECK (kind IN ('runs', 'tokens', 'cost_usd', 'calls_per_minute')),
        "limit" REAL NOT NULL CHECK ("limit" >= 0),
        period TEXT NOT NULL CHECK (period IN ('minute', 'day', 'week', 'month')),
        updated_at TEXT NOT NULL,
        PRIMARY KEY (tenant_id, kind, period)
    );
    CREATE INDEX steps_by_tenant
        ON steps(tenant_id, finished_at, input_tokens, output_tokens, cost_usd, model_calls);
    """,
    # 8: the HTTP API's bearer tokens
    # (`aigentflow tokens`, aigentflow/tenants/tokens.py). Only a token's sha256 is kept, never the token.
    """
    CREATE TABLE api_tokens (
        id TEXT PRIMARY KEY,
        tenant_id TEXT NOT NULL,
        name TEXT NOT NULL DEFAULT '',
        hash TEXT NOT NULL,
        created_at TEXT NOT NULL,
        revoked_at TEXT,
        last_used_at TEXT
    );
    CREATE INDEX api_tokens_by_tenant ON api_tokens(tenant_id, created_at);
    """,
]

LATEST_VERSION = len(MIGRATIONS)
