"""The ``aigentflow`` command line: one typer app per command group, composed in ``main``."""
