"""Tenants: who a project's runs, traces, findings, candidates and audit rows belong to.

``mode``: the emergency single-tenant switch (``aigentflow admin emergency --single-tenant-mode``).
``tokens``: the HTTP API's bearer tokens, one tenant each (``aigentflow tokens``; stored as hashes only).
"""
