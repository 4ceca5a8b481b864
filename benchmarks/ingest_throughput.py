"""Ingestion throughput: 70,000 MNIST-sized images through the real IDX path.

Writes a gzip'd IDX images/labels pair holding seven copies of the shared t10k set into a
temporary folder, then ingests it as the ``mnist`` train split twice: read in place
(``local_dir``) and fetched through a ``file://`` mirror (stream to a temporary file, verify,
rename). Prints wall time and peak memory of each; the target is under 10 s and under 1 GB.

    .venv/bin/python benchmarks/ingest_throughput.py [--mnist-dir ../shared/datasets/mnist]
"""

import argparse
import gzip
import resource
import struct
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

from gan_pipeline.datasets import RawDataset, load_dataset
from gan_pipeline.datasets.idx import IMAGES_MAGIC, LABELS_MAGIC, read_idx
from gan_pipeline.datasets.mnist_family import TRAIN_IMAGES, TRAIN_LABELS
from gan_pipeline.download import file_digests

COPIES = 7
TARGET_SECONDS = 10.0
TARGET_BYTES = 1 << 30
DEFAULT_MNIST_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "mnist"


def write_repeated_idx(source: Path, magic: int, target: Path, copies: int) -> None:
    array = read_idx(source, magic)
    header = struct.pack(f">{1 + array.ndim}I", magic, len(array) * copies, *array.shape[1:])
    target.write_bytes(gzip.compress(header + array.tobytes() * copies, compresslevel=6, mtime=0))


def measure(ingest: Callable[[Path], RawDataset], scratch: Path) -> tuple[float, int, RawDataset]:
    """Wall seconds of one untraced run, then the peak bytes traced in a second; each gets a fresh raw_dir."""
    started = time.perf_counter()
    raw = ingest(Path(tempfile.mkdtemp(dir=scratch)))
    seconds = time.perf_counter() - started
    del raw
    tracemalloc.start()
    raw = ingest(Path(tempfile.mkdtemp(dir=scratch)))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return seconds, peak, raw


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mnist-dir", type=Path, default=DEFAULT_MNIST_DIR)
    mnist_dir = parser.parse_args().mnist_dir
    if not (mnist_dir / "t10k-images-idx3-ubyte.gz").is_file():
        parser.error(f"no t10k-images-idx3-ubyte.gz in {mnist_dir}: pass --mnist-dir")
    within_target = True
    with tempfile.TemporaryDirectory() as tmp:
        files = Path(tmp) / "files"
        files.mkdir()
        write_repeated_idx(mnist_dir / "t10k-images-idx3-ubyte.gz", IMAGES_MAGIC, files / TRAIN_IMAGES, COPIES)
        write_repeated_idx(mnist_dir / "t10k-labels-idx1-ubyte.gz", LABELS_MAGIC, files / TRAIN_LABELS, COPIES)
        checksums = {name: "sha256:" + file_digests(files / name)["sha256"] for name in (TRAIN_IMAGES, TRAIN_LABELS)}
        common = {"splits": ["train"], "checksums": checksums, "progress_bar": False}
        modes = {
            "local_dir": {**common, "local_dir": files},
            "file:// mirror": {**common, "mirrors": [files.as_uri()]},
        }
        megabytes = (files / TRAIN_IMAGES).stat().st_size / 1e6
        print(f"{COPIES} x t10k = {COPIES * 10_000} images, {megabytes:.1f} MB gzip'd")
        for mode, options in modes.items():
            seconds, peak, raw = measure(
                lambda raw_dir, options=options: load_dataset("mnist", options, raw_dir), Path(tmp)
            )
            within_target &= seconds < TARGET_SECONDS and peak < TARGET_BYTES
            print(
                f"{mode:>15}: {seconds:6.2f} s wall, {peak / 2**20:7.1f} MiB peak traced, "
                f"{raw.samples.shape} {raw.samples.dtype}"
            )
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB
    within_target &= peak_rss < TARGET_BYTES
    print(f"process peak RSS (imports included): {peak_rss / 2**20:.1f} MiB")
    print(f"target < {TARGET_SECONDS:g} s and < 1 GiB: {'met' if within_target else 'MISSED'}")
    return 0 if within_target else 1


if __name__ == "__main__":
    sys.exit(main())
