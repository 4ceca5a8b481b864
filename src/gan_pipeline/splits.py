"""What the stages pass each other: samples, their labels, and the record of what they are.

Ingestion writes the record; every later stage reads it through ``Split.from_tensors``. In the
safetensors file it is a set of header keys (``dataset`` and ``card`` as before, plus the shape,
class names, fingerprint and, for synthetic mixtures, the modes).
"""

import hashlib
import json
from dataclasses import dataclass

import numpy as np

from gan_pipeline.errors import UserError
from gan_pipeline.gan.files import TensorFile

CardValue = str | int | float


class DatasetRecordError(UserError, ValueError):
    """A data file lacks the record of what it holds."""


@dataclass(frozen=True)
class MixtureModes:
    """Where a synthetic mixture's modes are: one centre per class, and their common std."""

    centres: tuple[tuple[float, ...], ...]
    std: float


@dataclass(frozen=True)
class DatasetRecord:
    """Which dataset the samples come from, their shape and classes, and a fingerprint of the ingested data."""

    dataset: str
    sample_shape: tuple[int, ...]
    class_names: tuple[str, ...]
    source_fingerprint: str  # sha256 of the samples and labels as ingested
    card: dict[str, CardValue]  # provenance from the source: what the dataset card lists
    modes: MixtureModes | None  # synthetic mixtures only
    channel_classes: tuple[str, ...] | None = None  # stacked data only: what each channel shows (``RawDataset``)

    def to_metadata(self) -> dict[str, str]:
        metadata = {
            "dataset": self.dataset,
            "card": json.dumps(self.card),
            "sample_shape": json.dumps(list(self.sample_shape)),
            "class_names": json.dumps(list(self.class_names)),
            "source_fingerprint": self.source_fingerprint,
        }
        if self.modes is not None:
            metadata["modes"] = json.dumps({"centres": self.modes.centres, "std": self.modes.std})
        if self.channel_classes is not None:
            metadata["channel_classes"] = json.dumps(list(self.channel_classes))
        return metadata

    @classmethod
    def from_metadata(cls, metadata: dict[str, str], source: str) -> "DatasetRecord":
        """The record in a file's header; ``source`` names the file in the error when it has none."""
        try:
            modes = json.loads(metadata["modes"]) if "modes" in metadata else None
            channel_classes = json.loads(metadata["channel_classes"]) if "channel_classes" in metadata else None
            return cls(
                dataset=metadata["dataset"],
                sample_shape=tuple(json.loads(metadata["sample_shape"])),
                class_names=tuple(json.loads(metadata["class_names"])),
                source_fingerprint=metadata["source_fingerprint"],
                card=json.loads(metadata["card"]),
                modes=None if modes is None else MixtureModes(tuple(map(tuple, modes["centres"])), modes["std"]),
                channel_classes=None if channel_classes is None else tuple(channel_classes),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise DatasetRecordError(
                f"{source} does not record what data it holds (missing or malformed {err}); an older version of "
                "gan-pipeline wrote it. Rerun ingestion and processing: `dvc repro` or `kedro run`"
            ) from None


def content_fingerprint(samples: np.ndarray, labels: np.ndarray) -> str:
    """sha256 of the arrays' shapes, dtypes and bytes."""
    digest = hashlib.sha256()
    for array in (np.ascontiguousarray(samples), np.ascontiguousarray(labels)):
        digest.update(f"{array.shape}{array.dtype}".encode())
        digest.update(memoryview(array).cast("B"))
    return digest.hexdigest()


@dataclass(frozen=True)
class Split:
    """Samples (images ``(N, C, H, W)`` or vectors ``(N, D)``), one integer label each, and their record."""

    samples: np.ndarray
    labels: np.ndarray
    record: DatasetRecord

    def subset(self, indices: np.ndarray, samples: np.ndarray | None = None) -> "Split":
        """The rows at ``indices`` (of ``samples`` when given: a transformed copy of these samples)."""
        chosen = self.samples if samples is None else samples
        return Split(chosen[indices], self.labels[indices].astype(np.int64), self.record)

    def to_tensors(self) -> TensorFile:
        return TensorFile({"samples": self.samples, "labels": self.labels}, self.record.to_metadata())

    @classmethod
    def from_tensors(cls, tensors: TensorFile, source: str) -> "Split":
        record = DatasetRecord.from_metadata(tensors.metadata, source)
        try:
            return cls(tensors.arrays["samples"], tensors.arrays["labels"], record)
        except KeyError as err:
            raise DatasetRecordError(f"{source} holds no {err} array: it is not a dataset split") from None
