"""Every error aigentflow raises on purpose.

Two families, kept apart:
- ``UsageError``: the user asked for something that cannot be done as asked (bad config, bad input,
  not a git repository, a locked database). The CLI prints the message and exits 2; nothing was
  changed.
- ``RunFailure``: a step of a run failed (the model's reply never validated, a cassette entry is
  missing, an agent crashed). It is recorded on the run, which stays resumable; the CLI exits 1.
"""

from __future__ import annotations


class AigentflowError(Exception):
    """Base of every error raised on purpose by aigentflow."""

    exit_code = 1


class UsageError(AigentflowError):
    """Bad input or configuration: the message says what was wrong and what to do."""

    exit_code = 2


class ConfigError(UsageError):
    """An unknown configuration key or a value the key does not allow."""


class NotAGitRepository(UsageError):
    """The directory is not inside a git repository."""


class NotInitialized(UsageError):
    """The project has no ``.aigentflow/`` directory yet."""


class StoreError(UsageError):
    """The state database is corrupted, locked or from a newer aigentflow."""


class UnknownRun(UsageError):
    """No run with the given id exists in this project."""


class IllegalTransition(AigentflowError):
    """A state machine event that is not allowed from the current state. Nothing was changed."""

    def __init__(self, state: str, event: str, reason: str) -> None:
        self.state = state
        self.event = event
        self.reason = reason
        super().__init__(f"cannot {event!r} from state {state}: {reason}")


class RunFailure(AigentflowError):
    """A step of a run failed; recorded on the run, which can be resumed."""


class ModelError(RunFailure):
    """A model call failed or its reply never matched the expected schema."""


class CassetteMissError(ModelError):
    """The replay cassette has no answer recorded for this prompt: replay never invents one, nor
    passes off one recorded for another prompt."""


class RunPaused(AigentflowError):
    """The run stopped at a step boundary because a pause was requested (emergency or Ctrl-C)."""

    exit_code = 3


class RunAbandoned(BaseException):
    """The run's engine must stop now and write nothing more, as if its process had died here: its
    driver stopped it at once (a second Ctrl-C, SIGTERM), or a crash test killed the driver. A
    ``BaseException``, so that no ``except Exception`` on the way records it as a failed step; the
    run stays where the store says, and `aigentflow resume` continues it."""
