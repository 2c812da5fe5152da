"""The authenticated HTTP API of a project (``aigentflow serve``); see README.md in this folder."""
