"""One run at a time in a project folder: two would overwrite each other's files and log into one MLflow run.

The lock is an advisory ``flock`` on a file in the project folder, held while a pipeline runs. The kernel
releases it when the process ends, however it ends, so a crashed run never leaves a stale lock; the file
keeps the holder's PID and command only to name it to the run that is refused.
"""

import fcntl
import os
import shlex
import sys
import time
from pathlib import Path
from typing import IO

from gan_pipeline.errors import UserError

LOCK_FILE = ".gan-pipeline-run.lock"


class ProjectBusy(UserError):
    """Another run holds the project folder; nothing was done."""


class RunLock:
    """The project folder's run lock: ``acquire`` before a pipeline runs, ``release`` after."""

    def __init__(self, project: Path) -> None:
        self.path = Path(project) / LOCK_FILE
        self._handle: IO[str] | None = None

    def acquire(self) -> None:
        """Hold the lock, or raise ``ProjectBusy`` naming the process that holds it."""
        handle = self.path.open("a+")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise ProjectBusy(
                f"another run is using the project folder {self.path.parent}: {holder}. Wait for it to end or stop "
                "it (kill <pid>); two runs in one folder would overwrite each other's files and MLflow run. To "
                "run beside it, use another clone of the project"
            ) from None
        started = time.strftime("%Y-%m-%d %H:%M:%S")
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}, `{shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]])}`, started {started}")
        handle.flush()
        self._handle = handle

    def release(self) -> None:
        if self._handle is not None:
            self._handle.truncate(0)
            fcntl.flock(self._handle, fcntl.LOCK_UN)
            self._handle.close()
            self._handle = None
