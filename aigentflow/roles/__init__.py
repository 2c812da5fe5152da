"""Roles as data: ``AgentSpec`` versions in a registry (``registry.py``); see ``spec.py``."""
