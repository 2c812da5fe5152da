"""Feature flags evaluated through OpenFeature: presets, flags files, targeting, splits and rollouts."""
