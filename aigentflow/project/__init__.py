"""The user's project: where aigentflow keeps things, the facts `init` records, its ecosystems,
Python versions and test command."""
