"""Registry of named raw-data sources.

Each source turns validated options into a ``RawDataset``; the ingestion node only looks the
name up here, so new sources slot in without touching any node.
"""

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from gan_pipeline.errors import UserError
from gan_pipeline.splits import CardValue, MixtureModes


class SourceError(UserError):
    """A source cannot deliver its data as configured; the message names the file or option and the fix."""


class SourceOptions(BaseModel):
    """Base for a source's options: unknown keys are errors, not silently ignored."""

    model_config = ConfigDict(extra="forbid")


@dataclass(frozen=True)
class RawDataset:
    """What every source returns.

    ``samples`` are images ``(N, C, H, W)`` uint8 in [0, 255], or vectors ``(N, D)`` float32;
    ``labels`` are ``(N,)`` int64 indices into ``class_names``; ``card`` records provenance (source,
    checksums, versions); ``modes`` says where a synthetic mixture's modes are; ``channel_classes``
    what each channel of stacked data shows; ``name`` tells apart the datasets of a source that reads what
    it is pointed at (one image folder from another).
    """

    samples: np.ndarray
    labels: np.ndarray
    class_names: tuple[str, ...]
    card: dict[str, CardValue]
    modes: MixtureModes | None = None
    # Stacked data: each channel is an image of one of these classes, the label their classes read as the
    # digits of a base-len(channel_classes) number, first channel first (Stacked MNIST: "0".."9", 1,000 labels).
    channel_classes: tuple[str, ...] | None = None
    name: str | None = None  # the data's own name, when the source can hold several (default: the source's)


@dataclass(frozen=True)
class DatasetSource:
    load: Callable[[Any, Path], RawDataset]
    options: type[SourceOptions]
    # How many samples ``load`` will return, when known without loading (options, raw_dir): lets parameter
    # validation reject e.g. a batch size larger than the data before any work starts.
    num_samples: Callable[[Any, Path], int | None] = lambda options, raw_dir: None
    # The shape of one sample, when known without loading: lets validation check the network fits.
    sample_shape: Callable[[Any, Path], tuple[int, ...] | None] = lambda options, raw_dir: None
    # The option that sets the images' side, for sources that resize: an error about the side names it.
    size_option: str | None = None


DATASETS: dict[str, DatasetSource] = {}


def register_dataset(
    name: str,
    options: type[SourceOptions] = SourceOptions,
    num_samples: Callable[[Any, Path], int | None] | None = None,
    sample_shape: Callable[[Any, Path], tuple[int, ...] | None] | None = None,
    size_option: str | None = None,
):
    """Decorator: ``@register_dataset("digits")`` adds a loader ``(options, raw_dir) -> RawDataset``."""

    def add(load: Callable[[Any, Path], RawDataset]) -> Callable[[Any, Path], RawDataset]:
        DATASETS[name] = DatasetSource(
            load=load,
            options=options,
            num_samples=num_samples or DatasetSource.num_samples,
            sample_shape=sample_shape or DatasetSource.sample_shape,
            size_option=size_option,
        )
        return load

    return add


def dataset_source(name: str) -> DatasetSource:
    if name not in DATASETS:
        raise KeyError(f"unknown dataset {name!r}; allowed: {sorted(DATASETS)}")
    return DATASETS[name]


def option_key(dataset: str, key: str) -> str:
    """The parameter a user edits to change ``key`` of ``dataset``, so errors can name the fix."""
    return f"data_ingestion.sources.{dataset}.{key}"


def load_dataset(name: str, options: dict[str, Any], raw_dir: Path) -> RawDataset:
    """Validate ``options`` against the source's model and load the data."""
    source = dataset_source(name)
    return source.load(source.options.model_validate(options), Path(raw_dir))


# Sources register themselves on import.
from gan_pipeline.datasets import digits, image_folder, mnist_family, stacked_mnist, synthetic  # noqa: E402, F401
