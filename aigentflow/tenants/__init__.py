"""Tenants: who a project's runs, traces, findings, candidates and audit rows belong to (README.md).

``mode``: the emergency single-tenant switch (``aigentflow admin emergency --single-tenant-mode``).
``registry``: tenant ids, status and quotas, audited. ``quotas``: usage per period, the refusals.
``ratelimit``: the Model Gateway's calls-per-minute buckets. ``scope``: ``TenantView``, tenant-scoped reads.
``isolation``: the tenant isolation score.
``tokens``: the HTTP API's bearer tokens, one tenant each (``aigentflow tokens``; stored as hashes only).
"""
