"""GenUI output: results as published schemas, rich rendering for terminals, live progress and JSON
lines of a run (see README.md). Importing the package imports nothing: each module is imported by its user."""
