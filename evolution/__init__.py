"""The self-evolution loop (v2.0): traces and patterns, agent generation, tournaments, shadow and canary.

It may import ``aigentflow`` and ``actors``; neither ever imports it (``lint-imports`` checks). It adds its
commands to ``aigentflow`` through the ``aigentflow.commands`` entry point and its role versions through
the role registry (``aigentflow.roles``).
"""
