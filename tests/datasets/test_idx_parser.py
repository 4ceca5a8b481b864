import gzip
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from gan_pipeline.datasets.idx import IMAGES_MAGIC, LABELS_MAGIC, IdxFormatError, read_idx

WriteIdx = Callable[..., Path]


def test_images_and_labels_read_back_exactly_as_written(tmp_path: Path, write_idx: WriteIdx) -> None:
    images = np.random.default_rng(0).integers(0, 256, size=(5, 4, 3), dtype=np.uint8)
    labels = np.arange(5, dtype=np.uint8)

    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "i.gz", images), IMAGES_MAGIC), images)
    np.testing.assert_array_equal(read_idx(write_idx(tmp_path / "l.gz", labels), LABELS_MAGIC), labels)


def test_the_real_t10k_files_parse_to_ten_thousand_28x28_images_and_their_labels(
    mnist_dir: Path, t10k_class_counts: list[int]
) -> None:
    images = read_idx(mnist_dir / "t10k-images-idx3-ubyte.gz", IMAGES_MAGIC)
    labels = read_idx(mnist_dir / "t10k-labels-idx1-ubyte.gz", LABELS_MAGIC)

    assert images.shape == (10_000, 28, 28)
    assert images.dtype == np.uint8
    assert np.bincount(labels).tolist() == t10k_class_counts


def test_a_truncated_gzip_file_is_reported_as_truncated(tmp_path: Path, write_idx: WriteIdx) -> None:
    whole = write_idx(tmp_path / "whole.gz", np.zeros((20, 8, 8), np.uint8)).read_bytes()
    truncated = tmp_path / "truncated.gz"
    truncated.write_bytes(whole[: len(whole) // 2])

    with pytest.raises(IdxFormatError, match=r"not a complete gzip file.*truncated or damaged"):
        read_idx(truncated, IMAGES_MAGIC)


def test_a_file_that_is_not_gzip_is_reported(tmp_path: Path) -> None:
    plain = tmp_path / "plain.gz"
    plain.write_bytes(b"<html>Not Found</html>")

    with pytest.raises(IdxFormatError, match="not a complete gzip file"):
        read_idx(plain, IMAGES_MAGIC)


def test_a_labels_file_read_as_images_names_both_magic_numbers(tmp_path: Path, write_idx: WriteIdx) -> None:
    labels = write_idx(tmp_path / "labels.gz", np.arange(10, dtype=np.uint8))

    with pytest.raises(IdxFormatError, match=r"0x00000801 \(idx1 uint8 labels\), expected 0x00000803") as err:
        read_idx(labels, IMAGES_MAGIC)
    assert "swapped" in str(err.value)


def test_an_unknown_magic_number_is_rejected(tmp_path: Path, write_idx: WriteIdx) -> None:
    path = write_idx(tmp_path / "odd.gz", np.zeros((2, 2, 2), np.uint8), magic=0x12345678)

    with pytest.raises(IdxFormatError, match=r"0x12345678 \(not a known IDX kind\)"):
        read_idx(path, IMAGES_MAGIC)


def test_a_payload_shorter_than_the_header_declares_is_reported_as_truncated(tmp_path: Path) -> None:
    path = tmp_path / "short.gz"
    path.write_bytes(gzip.compress(struct.pack(">4I", IMAGES_MAGIC, 5, 2, 2) + bytes(4 * 4)))

    declared = r"truncated: its header declares shape \(5, 2, 2\) \(20 bytes\) but 16 bytes follow"
    with pytest.raises(IdxFormatError, match=declared):
        read_idx(path, IMAGES_MAGIC)


def test_a_payload_longer_than_the_header_declares_is_reported_as_padded(tmp_path: Path) -> None:
    path = tmp_path / "long.gz"
    path.write_bytes(gzip.compress(struct.pack(">2I", LABELS_MAGIC, 3) + bytes(4)))

    with pytest.raises(IdxFormatError, match="padded with trailing bytes"):
        read_idx(path, LABELS_MAGIC)


def test_a_file_that_ends_inside_its_header_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "header.gz"
    path.write_bytes(gzip.compress(struct.pack(">2I", IMAGES_MAGIC, 5)))

    with pytest.raises(IdxFormatError, match="ends inside its header"):
        read_idx(path, IMAGES_MAGIC)
