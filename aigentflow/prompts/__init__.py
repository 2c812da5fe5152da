"""Layered prompts: constitution, role, project context, task and output format.

The layer texts ship as package data under ``layers/`` and a project can override any of them with a
file of the same relative path under ``.aigentflow/prompts/``. ``compose.py`` puts them together
deterministically and hashes the result.
"""
