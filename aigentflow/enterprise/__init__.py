"""Enterprise operations (the rollout plan's phase 4): vendor security in ``vendors/``."""
