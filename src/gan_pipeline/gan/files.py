"""Files the core reads and writes: atomic writes, and the content of a safetensors file."""

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` only on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        # mkstemp makes 0600 files, and some writers (safetensors) recreate the file: give the result the
        # permissions any new file gets under the umask, as the writer would without the temporary path.
        tmp.chmod(0o666 & ~_UMASK)
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


@dataclass(frozen=True)
class TensorFile:
    """What a safetensors file holds: named arrays, and string metadata in its header."""

    arrays: dict[str, np.ndarray]
    metadata: dict[str, str] = field(default_factory=dict)
    origin: str = field(default="", compare=False)  # the file it was read from, for error messages
