"""MNIST, Fashion-MNIST and KMNIST: one IDX file layout, three sets of mirrors and checksums.

Files are read in place from ``local_dir`` or fetched into ``raw_dir/<dataset>/`` from the first
mirror that delivers them; either way each one is checked against its published digest before
it is parsed.
"""

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import Field, NonNegativeFloat, PositiveFloat, PositiveInt, field_validator, model_validator

from gan_pipeline.datasets import RawDataset, SourceError, SourceOptions, option_key, register_dataset
from gan_pipeline.datasets.idx import IMAGES_MAGIC, LABELS_MAGIC, IdxFormatError, read_idx
from gan_pipeline.download import Checksum, RetryPolicy, VerifiedFile, fetch_file, verify_file

Split = Literal["train", "test"]
TRAIN_IMAGES, TRAIN_LABELS = "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"
TEST_IMAGES, TEST_LABELS = "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"
SPLIT_FILES = {"train": (TRAIN_IMAGES, TRAIN_LABELS), "test": (TEST_IMAGES, TEST_LABELS)}
SPLIT_SIZES = {"train": 60_000, "test": 10_000}  # the same in all three releases
NUM_CLASSES = 10


DIGIT_NAMES = tuple(str(digit) for digit in range(NUM_CLASSES))


class MissingSourceFile(SourceError, FileNotFoundError):
    """A file the options point to is not there."""


@dataclass(frozen=True)
class IdxRelease:
    mirrors: tuple[str, ...]
    checksums: dict[str, str]  # file name -> "sha256:<hex>", as published by the dataset's authors
    class_names: tuple[str, ...]  # label -> name, as the authors list them


RELEASES = {
    "mnist": IdxRelease(
        mirrors=(
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ),
        checksums={
            TRAIN_IMAGES: "sha256:440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
            TRAIN_LABELS: "sha256:3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
            TEST_IMAGES: "sha256:8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
            TEST_LABELS: "sha256:f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
        },
        class_names=DIGIT_NAMES,
    ),
    "fashion_mnist": IdxRelease(
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        checksums={
            TRAIN_IMAGES: "sha256:3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
            TRAIN_LABELS: "sha256:a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
            TEST_IMAGES: "sha256:346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
            TEST_LABELS: "sha256:67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
        },
        class_names=(
            "T-shirt/top",
            "Trouser",
            "Pullover",
            "Dress",
            "Coat",
            "Sandal",
            "Shirt",
            "Sneaker",
            "Bag",
            "Ankle boot",
        ),
    ),
    "kmnist": IdxRelease(
        mirrors=("http://codh.rois.ac.jp/kmnist/dataset/kmnist/",),
        checksums={
            TRAIN_IMAGES: "sha256:51467d22d8cc72929e2a028a0428f2086b092bb31cfb79c69cc0a90ce135fde4",
            TRAIN_LABELS: "sha256:e38f9ebcd0f3ebcdec7fc8eabdcdaef93bb0df8ea12bee65224341c8183d8e17",
            TEST_IMAGES: "sha256:edd7a857845ad6bb1d0ba43fe7e794d164fe2dce499a1694695a792adfac43c5",
            TEST_LABELS: "sha256:20bb9a0ef54c7db3efc55a92eef5582c109615df22683c380526788f98e42a1c",
        },
        class_names=("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo"),  # Kuzushiji hiragana, romanised
    ),
}


class IdxReleaseOptions(SourceOptions):
    # Which splits to ingest, concatenated in this order.
    splits: tuple[Split, ...] = Field(("train", "test"), min_length=1)
    # Base URLs tried in order; file:// URLs and plain folder paths work too (offline mirrors).
    mirrors: tuple[str, ...] = Field(min_length=1)
    # A folder that already holds the files: they are verified and read in place, nothing is downloaded.
    local_dir: Path | None = None
    # File name -> "sha256:<hex>" or "md5:<hex>"; every file of the chosen splits needs one.
    checksums: dict[str, str]
    # Tries per mirror for answers that may change (5xx, timeouts, resets).
    attempts: PositiveInt = 3
    # Seconds before retry k: backoff_s * 2 ** (k - 1).
    backoff_s: NonNegativeFloat = 1.0
    # Seconds to wait for a connection or for the next bytes of a download.
    timeout_s: PositiveFloat = 30.0
    progress_bar: bool = True

    @field_validator("splits")
    @classmethod
    def _distinct(cls, splits: tuple[str, ...]) -> tuple[str, ...]:
        if len(set(splits)) != len(splits):
            raise ValueError(f"splits {list(splits)} repeat a split; list each of train, test at most once")
        return splits

    @field_validator("checksums")
    @classmethod
    def _well_formed(cls, checksums: dict[str, str]) -> dict[str, str]:
        for text in checksums.values():
            Checksum.parse(text)
        return checksums

    @model_validator(mode="after")
    def _every_file_has_a_checksum(self) -> "IdxReleaseOptions":
        missing = [name for name in self.files if name not in self.checksums]
        if missing:
            raise ValueError(f"checksums has no entry for {missing}: add the published digest of each file")
        return self

    @property
    def files(self) -> list[str]:
        return [name for split in self.splits for name in SPLIT_FILES[split]]

    @property
    def retry(self) -> RetryPolicy:
        return RetryPolicy(attempts=self.attempts, backoff_s=self.backoff_s, timeout_s=self.timeout_s)


class MnistOptions(IdxReleaseOptions):
    mirrors: tuple[str, ...] = Field(RELEASES["mnist"].mirrors, min_length=1)
    checksums: dict[str, str] = Field(default_factory=lambda: dict(RELEASES["mnist"].checksums))


class FashionMnistOptions(IdxReleaseOptions):
    mirrors: tuple[str, ...] = Field(RELEASES["fashion_mnist"].mirrors, min_length=1)
    checksums: dict[str, str] = Field(default_factory=lambda: dict(RELEASES["fashion_mnist"].checksums))


class KmnistOptions(IdxReleaseOptions):
    mirrors: tuple[str, ...] = Field(RELEASES["kmnist"].mirrors, min_length=1)
    checksums: dict[str, str] = Field(default_factory=lambda: dict(RELEASES["kmnist"].checksums))


def load_idx_release(
    dataset: str, options: IdxReleaseOptions, raw_dir: Path, configured_as: str | None = None
) -> RawDataset:
    """Verified files of the chosen splits -> ``(N, 1, H, W)`` uint8 images and int64 labels.

    ``configured_as`` is the source whose options these are, when another source reads this release's files.
    """
    files = {name: obtain_file(dataset, name, options, raw_dir, configured_as or dataset) for name in options.files}
    splits = {split: read_split(*(files[name] for name in SPLIT_FILES[split])) for split in options.splits}
    card: dict[str, str | int | float] = {
        "source": dataset,
        "origin": str(options.local_dir) if options.local_dir else " ".join(options.mirrors),
        "splits": ",".join(options.splits),
    }
    card |= {f"num_{split}": len(labels) for split, (_, labels) in splits.items()}
    for name, verified in files.items():
        card |= {f"{name}.{algorithm}": digest for algorithm, digest in verified.digests.items()}
    return RawDataset(
        samples=np.concatenate([images for images, _ in splits.values()])[:, None],  # (N, 1, H, W)
        labels=np.concatenate([labels for _, labels in splits.values()]).astype(np.int64),
        class_names=RELEASES[dataset].class_names,
        card=card,
    )


def obtain_file(dataset: str, name: str, options: IdxReleaseOptions, raw_dir: Path, configured_as: str) -> VerifiedFile:
    """``name`` of ``dataset``, verified; errors name the options of source ``configured_as``."""
    expected = Checksum.parse(options.checksums[name])
    if options.local_dir is None:
        fix = (
            f"check the network, add a reachable mirror to {option_key(configured_as, 'mirrors')}, or put the "
            f"files in a folder and set {option_key(configured_as, 'local_dir')}"
        )
        return fetch_file(
            name,
            options.mirrors,
            raw_dir / dataset,
            expected,
            retry=options.retry,
            progress_bar=options.progress_bar,
            fix=fix,
        )
    path = options.local_dir / name
    if not path.is_file():
        raise MissingSourceFile(
            f"{path} does not exist: copy {name} there, drop its split from "
            f"{option_key(configured_as, 'splits')}, or remove {option_key(configured_as, 'local_dir')} to download "
            "from the mirrors"
        )
    fix = (
        f"replace it with the published file, or, if this copy is the one you mean, set "
        f"{option_key(configured_as, 'checksums')}[{name!r}] to its digest"
    )
    return verify_file(path, expected, fix)


def read_split(images_file: VerifiedFile, labels_file: VerifiedFile) -> tuple[np.ndarray, np.ndarray]:
    images = read_idx(images_file.path, IMAGES_MAGIC)
    labels = read_idx(labels_file.path, LABELS_MAGIC)
    if len(images) != len(labels):
        raise IdxFormatError(
            f"{images_file.path.name} holds {len(images)} images but {labels_file.path.name} holds "
            f"{len(labels)} labels: the two come from different splits or releases; use matching files"
        )
    if labels.size and labels.max() >= NUM_CLASSES:
        raise IdxFormatError(f"{labels_file.path} has label {labels.max()}, outside 0..{NUM_CLASSES - 1}")
    return images, labels


def published_num_samples(dataset: str, options: IdxReleaseOptions, raw_dir: Path) -> int | None:
    """The size of the chosen splits when the checksums pin the published files, else unknown."""
    published = RELEASES[dataset].checksums
    if any(options.checksums[name] != published[name] for name in options.files):
        return None
    return sum(SPLIT_SIZES[split] for split in options.splits)


def register_release(dataset: str, options: type[IdxReleaseOptions]) -> None:
    count = partial(published_num_samples, dataset)
    register_dataset(dataset, options, count, sample_shape=lambda options, raw_dir: (1, 28, 28))(
        partial(load_idx_release, dataset)
    )


register_release("mnist", MnistOptions)
register_release("fashion_mnist", FashionMnistOptions)
register_release("kmnist", KmnistOptions)
