"""Fetch a file from a list of mirrors into a folder, verified and atomically.

A file at its final name is always a complete, verified copy: downloads stream to a hidden
temporary file beside it and are renamed into place only after the checksum matches, and a file
already there is re-verified on every run (a failing one is downloaded again, never trusted).
Only the standard library speaks HTTP, so an offline mirror (``file://`` or a plain path) is
just another entry in the list.
"""

import hashlib
import http.client
import logging
import os
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.error import HTTPError, URLError

from tqdm.auto import tqdm

from gan_pipeline.errors import UserError

logger = logging.getLogger(__name__)

CHUNK_BYTES = 1 << 20
HEX_LENGTHS = {"sha256": 64, "md5": 32}  # the algorithms a checksum may name, and their digest lengths
PARTIAL_SUFFIX = ".part"


class ChecksumError(UserError, ValueError):
    """A file's bytes are not the ones its checksum describes."""


class DownloadError(UserError, OSError):
    """No mirror delivered a verified copy of a file."""


class IncompleteDownloadError(OSError):
    """The connection closed before the announced number of bytes arrived."""


@dataclass(frozen=True)
class Checksum:
    """An expected digest, written ``"sha256:<hex>"`` or ``"md5:<hex>"`` in options."""

    algorithm: str
    hexdigest: str

    @classmethod
    def parse(cls, text: str) -> "Checksum":
        algorithm, _, hexdigest = text.partition(":")
        hexdigest = hexdigest.strip().lower()
        if algorithm not in HEX_LENGTHS:
            raise ValueError(f"checksum {text!r} must start with one of {sorted(HEX_LENGTHS)} and a colon")
        if len(hexdigest) != HEX_LENGTHS[algorithm] or not all(c in "0123456789abcdef" for c in hexdigest):
            raise ValueError(f"checksum {text!r}: {algorithm} needs {HEX_LENGTHS[algorithm]} hex digits")
        return cls(algorithm, hexdigest)

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hexdigest}"


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 3  # per mirror, for answers that may change on retry (5xx, timeouts, resets)
    backoff_s: float = 1.0  # wait before retry k (k = 1, 2, ...) is backoff_s * 2 ** (k - 1)
    timeout_s: float = 30.0  # per connect and per read, not for the whole file


@dataclass(frozen=True)
class VerifiedFile:
    path: Path
    digests: dict[str, str]  # every algorithm in HEX_LENGTHS -> hex digest, for the dataset card


def file_digests(path: Path) -> dict[str, str]:
    """All supported digests of ``path`` in one pass over its bytes."""
    hashers = {name: hashlib.new(name) for name in HEX_LENGTHS}
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK_BYTES):
            for hasher in hashers.values():
                hasher.update(chunk)
    return {name: hasher.hexdigest() for name, hasher in hashers.items()}


def verify_file(path: Path, expected: Checksum, fix: str) -> VerifiedFile:
    """Return ``path`` with its digests, or raise ``ChecksumError`` saying what differs and ``fix``."""
    digests = file_digests(path)
    if digests[expected.algorithm] != expected.hexdigest:
        raise ChecksumError(f"checksum mismatch for {path}: {mismatch(expected, digests)}; {fix}")
    return VerifiedFile(path, digests)


def mismatch(expected: Checksum, digests: dict[str, str]) -> str:
    return f"expected {expected}, got {expected.algorithm}:{digests[expected.algorithm]}"


def mirror_url(mirror: str, filename: str) -> str:
    """``filename`` under ``mirror``; a mirror without a scheme is a local folder."""
    base = mirror if "://" in mirror else Path(mirror).expanduser().resolve().as_uri()
    return f"{base.rstrip('/')}/{filename}"


def fetch_file(
    filename: str,
    mirrors: Sequence[str],
    folder: Path,
    expected: Checksum,
    *,
    retry: RetryPolicy = RetryPolicy(),
    progress_bar: bool = True,
    fix: str = "add a reachable mirror, or copy a verified file to the path above",
) -> VerifiedFile:
    """Make ``folder / filename`` a verified copy, downloading it only when it is not one already."""
    target = folder / filename
    if target.is_file():
        try:
            return verify_file(target, expected, fix="downloading it again")
        except ChecksumError as error:
            logger.warning("%s", error)
            target.unlink()
    folder.mkdir(parents=True, exist_ok=True)
    remove_partial_downloads(target)
    failures = []
    with partial_file(target) as partial:
        for mirror in mirrors:
            url = mirror_url(mirror, filename)
            try:
                download_with_retries(url, partial, retry, progress_bar)
            except (OSError, http.client.HTTPException) as error:
                failures.append(f"  - {url}: {error}")
                continue
            digests = file_digests(partial)
            if digests[expected.algorithm] != expected.hexdigest:
                failures.append(f"  - {url}: served a different file ({mismatch(expected, digests)})")
                continue
            os.replace(partial, target)
            logger.info("downloaded %s from %s", target, url)
            return VerifiedFile(target, digests)
    raise DownloadError(
        f"could not download {filename} to {target} from any of {len(failures)} mirror(s):\n"
        + "\n".join(failures)
        + f"\nFix: {fix}"
    )


def remove_partial_downloads(target: Path) -> None:
    """Delete temporary files a killed run left beside ``target``; they are never at its final name."""
    for partial in target.parent.glob(f".{target.name}.*{PARTIAL_SUFFIX}"):
        partial.unlink(missing_ok=True)


@contextmanager
def partial_file(target: Path) -> Iterator[Path]:
    """A hidden temporary file beside ``target`` (same file system, so renaming it is atomic)."""
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=PARTIAL_SUFFIX, dir=target.parent)
    os.close(fd)
    partial = Path(name)
    try:
        yield partial
    finally:
        partial.unlink(missing_ok=True)


def download_with_retries(url: str, destination: Path, retry: RetryPolicy, progress_bar: bool) -> None:
    """Retry 5xx answers, timeouts and resets with exponential back-off; fail fast on the rest (404)."""
    for attempt in range(1, retry.attempts + 1):
        try:
            stream_to_file(url, destination, retry.timeout_s, progress_bar)
            return
        except (OSError, http.client.HTTPException) as error:
            description = describe_failure(error, retry.timeout_s)
            if not is_transient(error):
                raise OSError(description) from error
            if attempt == retry.attempts:
                raise OSError(f"{description} ({retry.attempts} attempts)") from error
            delay = retry.backoff_s * 2 ** (attempt - 1)
            logger.warning("%s: %s; retrying in %.2g s", url, description, delay)
            time.sleep(delay)


def stream_to_file(url: str, destination: Path, timeout_s: float, progress_bar: bool) -> None:
    with urllib.request.urlopen(url, timeout=timeout_s) as response, destination.open("wb") as out:
        announced = response.headers.get("Content-Length")
        total = int(announced) if announced else None
        received = 0
        with tqdm(
            total=total,
            unit="B",
            unit_scale=True,
            unit_divisor=1024,
            desc=url.rsplit("/", 1)[-1],
            disable=not progress_bar,
            leave=False,
        ) as bar:
            while chunk := response.read(CHUNK_BYTES):
                out.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
        # urllib does not notice a connection closed early when Content-Length was sent.
        if total is not None and received != total:
            raise IncompleteDownloadError(f"connection closed after {received} of {total} bytes")
        out.flush()
        os.fsync(out.fileno())


def is_transient(error: Exception) -> bool:
    """Whether asking the same mirror again may succeed: not for a 404 or a missing local file."""
    if isinstance(error, HTTPError):
        return error.code >= 500 or error.code in (408, 429)
    if isinstance(error, URLError):
        return not isinstance(error.reason, FileNotFoundError)
    return True


def describe_failure(error: Exception, timeout_s: float) -> str:
    if isinstance(error, HTTPError):
        return f"HTTP {error.code} {error.reason}"
    reason = error.reason if isinstance(error, URLError) else error
    if isinstance(reason, TimeoutError):
        return f"timed out after {timeout_s:g} s"
    return f"{type(reason).__name__}: {reason}" if isinstance(reason, Exception) else str(reason)
