"""A run: the state machine (data), the engine that drives one run through it, the driver side
(plan, record, progress), the agent protocol, hooks and artifacts. Never imports ``actors/``."""
