"""Configuration: the settings models, the five layers merged and validated, feature-flag presets."""
