"""Processing: refuse malformed data early, then scale images to [-1, 1] and split by class."""

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from gan_pipeline.config.processing import ProcessingParams
from gan_pipeline.errors import UserError
from gan_pipeline.splits import Split

MIN_PER_CLASS = 2  # a stratified split needs at least two samples of every class


class InvalidDatasetError(UserError, ValueError):
    """The raw dataset is malformed; the message says what and how to fix it."""


def _image_problems(images: np.ndarray) -> list[str]:
    if images.dtype != np.uint8:
        return [f"images must be uint8 in [0, 255]; got dtype {images.dtype}"]
    if images.shape[1] not in (1, 3):
        return [f"images must have 1 or 3 channels; got {images.shape[1]}"]
    if images.size and images.min() == images.max():
        return [f"every pixel has the same value ({images.min()}): the images are blank"]
    return []


def _vector_problems(vectors: np.ndarray) -> list[str]:
    if not np.issubdtype(vectors.dtype, np.floating):
        return [f"vectors must be floating point; got dtype {vectors.dtype}"]
    if not np.isfinite(vectors).all():
        return [f"{int((~np.isfinite(vectors)).sum())} vector values are NaN or infinite"]
    return []


def scale_to_unit_range(images: np.ndarray) -> np.ndarray:
    """uint8 [0, 255] -> float32 [-1, 1], the range of the generator's tanh output."""
    return images.astype(np.float32) / 127.5 - 1.0


def as_float32(vectors: np.ndarray) -> np.ndarray:
    """Vectors keep their coordinates: mode metrics are measured where the modes are."""
    return vectors.astype(np.float32)


@dataclass(frozen=True)
class SampleKind:
    problems: Callable[[np.ndarray], list[str]]
    prepare: Callable[[np.ndarray], np.ndarray]


# By the number of dimensions of the samples array: images (N, C, H, W) or vectors (N, D).
SAMPLE_KINDS: dict[int, SampleKind] = {
    4: SampleKind(problems=_image_problems, prepare=scale_to_unit_range),
    2: SampleKind(problems=_vector_problems, prepare=as_float32),
}


def validate_raw_dataset(raw: Split) -> Split:
    """Check shape, dtype, value range, label set and counts; return the raw data unchanged."""
    samples, labels = np.asarray(raw.samples), np.asarray(raw.labels)
    kind = SAMPLE_KINDS.get(samples.ndim)
    if kind is None:
        problems = [f"samples must be images (N, C, H, W) or vectors (N, D); got shape {samples.shape}"]
    else:
        problems = kind.problems(samples)
    if labels.ndim != 1 or len(labels) != len(samples):
        problems.append(f"need one label per sample; got {len(labels)} labels for {len(samples)} samples")
    elif not np.issubdtype(labels.dtype, np.integer):
        problems.append(f"labels must be integers; got dtype {labels.dtype}")
    else:
        classes, counts = np.unique(labels, return_counts=True)
        if len(classes) and (classes[0] != 0 or classes[-1] != len(classes) - 1):
            problems.append(f"labels must be 0..K-1 with every class present; got {classes.tolist()}")
        rare = classes[counts < MIN_PER_CLASS].tolist()
        if rare:
            problems.append(f"classes {rare} have fewer than {MIN_PER_CLASS} samples")
    if problems:
        raise InvalidDatasetError(
            f"{raw.record.dataset} failed validation:\n  - "
            + "\n  - ".join(problems)
            + "\nFix the source or its options in conf/base/parameters_data_ingestion.yml and rerun "
            "the data_ingestion pipeline."
        )
    return raw


def split_dataset(raw: Split, params: ProcessingParams) -> dict[str, Split]:
    """Scale images (vectors stay as they are), then make a seeded, class-stratified split."""
    from sklearn.model_selection import train_test_split  # here: every `kedro` command imports the pipelines

    raw = validate_raw_dataset(raw)
    indices = np.arange(len(raw.labels))
    train_idx, val_idx = train_test_split(
        indices, test_size=params.validation_fraction, stratify=raw.labels, random_state=params.seed
    )
    samples = SAMPLE_KINDS[raw.samples.ndim].prepare(raw.samples)
    return {
        "train_set": raw.subset(np.sort(train_idx), samples),
        "validation_set": raw.subset(np.sort(val_idx), samples),
    }


def profile_splits(train_set: Split, validation_set: Split) -> pd.DataFrame:
    """Per split and class: sample count, value mean and std (images in the scaled [-1, 1] range)."""
    rows = []
    for split, data in (("train", train_set), ("validation", validation_set)):
        samples, labels = data.samples, data.labels
        for label in [*np.unique(labels).tolist(), "all"]:
            chosen = samples if label == "all" else samples[labels == label]
            rows.append(
                {
                    "split": split,
                    "class": str(label),
                    "count": len(chosen),
                    "pixel_mean": float(chosen.mean()),
                    "pixel_std": float(chosen.std()),
                }
            )
    return pd.DataFrame(rows)
