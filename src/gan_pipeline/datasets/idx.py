"""The IDX format of the MNIST family, read with every header field checked.

An IDX file is a big-endian header (magic ``0x0000TTNN``: type code ``TT``, ``NN`` dimensions,
then one uint32 per dimension) followed by the raw array. Checking the header against the
payload turns a wrong, truncated or padded file into an error that says so, instead of a
silently misshapen array.
"""

import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np

from gan_pipeline.datasets import SourceError

IMAGES_MAGIC = 0x00000803  # uint8, 3 dimensions: (N, H, W)
LABELS_MAGIC = 0x00000801  # uint8, 1 dimension: (N,)
KINDS = {IMAGES_MAGIC: "idx3 uint8 images", LABELS_MAGIC: "idx1 uint8 labels"}


class IdxFormatError(SourceError, ValueError):
    """A file is not the IDX array its name promises."""


def read_idx(path: Path, magic: int) -> np.ndarray:
    """The uint8 array in gzip'd IDX file ``path``, whose header must start with ``magic``.

    One decompression and one ``np.frombuffer``: no per-sample Python work. The result is a
    read-only view of the decompressed bytes.
    """
    try:
        data = gzip.decompress(path.read_bytes())
    except (EOFError, gzip.BadGzipFile, zlib.error) as error:
        raise IdxFormatError(
            f"{path} is not a complete gzip file ({error}); it is truncated or damaged: delete it and fetch it again"
        ) from error
    return parse_idx(data, magic, source=str(path))


def parse_idx(data: bytes, magic: int, source: str) -> np.ndarray:
    """Decompressed IDX bytes to an array of the shape the header declares."""
    if len(data) < 4:
        raise IdxFormatError(f"{source} holds {len(data)} bytes, fewer than an IDX magic number")
    (found,) = struct.unpack(">I", data[:4])
    if found != magic:
        found_kind = KINDS.get(found, "not a known IDX kind")
        raise IdxFormatError(
            f"{source} has magic number 0x{found:08X} ({found_kind}), expected 0x{magic:08X} "
            f"({KINDS[magic]}): check that images and labels files are not swapped or renamed"
        )
    ndim = magic & 0xFF
    header_bytes = 4 + 4 * ndim
    if len(data) < header_bytes:
        raise IdxFormatError(f"{source} ends inside its header ({len(data)} of {header_bytes} bytes)")
    shape = struct.unpack(f">{ndim}I", data[4:header_bytes])
    expected = math.prod(shape)
    payload = len(data) - header_bytes
    if payload != expected:
        problem = "truncated" if payload < expected else "padded with trailing bytes"
        raise IdxFormatError(
            f"{source} is {problem}: its header declares shape {shape} ({expected} bytes) but "
            f"{payload} bytes follow the header"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header_bytes).reshape(shape)
