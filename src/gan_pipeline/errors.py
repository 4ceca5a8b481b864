"""Errors a user can fix, reported as one message rather than a traceback.

Raised on purpose for bad input or configuration (a parameter, a dataset file, a checkpoint, the
state of the model registry), a ``UserError`` ends ``kedro run`` and ``gan-pipeline`` with what is
wrong, where, and the fix, and exit code 1. Any other exception is a bug or an outage and keeps its
traceback; ``GAN_PIPELINE_TRACEBACK=1`` shows the traceback of user errors too.
"""

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

TRACEBACK_VARIABLE = "GAN_PIPELINE_TRACEBACK"


class UserError(Exception):
    """Bad input or configuration; the message says what is wrong, where (the key or file) and the fix."""


def user_error_in(error: BaseException | None) -> UserError | None:
    """The ``UserError`` behind ``error``: itself, or the one it was raised from (Kedro wraps dataset errors)."""
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, UserError):
            return error
        seen.add(id(error))
        error = error.__cause__ or (None if error.__suppress_context__ else error.__context__)
    return None


def tracebacks_wanted() -> bool:
    return os.environ.get(TRACEBACK_VARIABLE, "").lower() not in ("", "0", "false", "no")


def user_error_message(error: UserError) -> str:
    return f"Error: {error}\n(Set {TRACEBACK_VARIABLE}=1 to see the traceback.)"


@contextmanager
def reported_user_errors() -> Iterator[None]:
    """Print a ``UserError`` raised inside as its message alone and exit 1, an interruption (Ctrl-C, SIGTERM) as
    one line and exit 130; let anything else through."""
    try:
        yield
    except KeyboardInterrupt as interrupt:
        how = str(interrupt) or "stopped by Ctrl-C"
        print(
            f"Interrupted ({how}): the MLflow run ends as KILLED; run the same command again to resume from the "
            "last checkpoint.",
            file=sys.stderr,
            flush=True,
        )
        raise SystemExit(130) from None
    except Exception as error:
        found = user_error_in(error)
        if found is None or tracebacks_wanted():
            raise
        print(user_error_message(found), file=sys.stderr, flush=True)
        raise SystemExit(1) from None
