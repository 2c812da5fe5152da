"""What runs the project's own code: build tasks (edits, sandboxed tests), lint, coverage, the test
guard, compliance, test results and the CI gate."""
