"""aigentflow: teams of AI agents carrying a feature request to reviewed, merged code.

Importing this package is cheap on purpose: no Ray, no litellm, no pydantic models beyond what a
command asks for. Heavy modules are imported by the commands that need them.
"""

__version__ = "0.1.0"
