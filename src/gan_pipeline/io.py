"""Kedro datasets that write atomically: a crash never leaves a half-written file behind.

Each writes to a temporary file beside the target and renames it into place, so the next run
either sees the previous complete file or the new complete file.
"""

import json
import logging
import struct
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from kedro.io import AbstractDataset, CatalogProtocol, DatasetError, MemoryDataset
from safetensors import SafetensorError, safe_open
from safetensors.numpy import save_file

from gan_pipeline.errors import UserError
from gan_pipeline.gan.files import TensorFile, atomic_path
from gan_pipeline.splits import Split


class MissingInputError(UserError, DatasetError):
    """A file a pipeline reads is not there: the stage that writes it has not run."""


class UnreadableFileError(UserError, DatasetError):
    """A file is there but cannot be read as what the catalog says it is."""


def sort_safetensors_header(path: Path) -> None:
    """Rewrite a safetensors header with its keys sorted, in place.

    The writer emits metadata in hash-map order, which changes from one process to the next, so the
    same tensors would hash differently each time they are saved and DVC would rerun every stage
    downstream. Sorting keeps the header's length, so the tensor bytes after it stay where they are.
    """
    with path.open("r+b") as handle:
        (size,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(size))
        canonical = json.dumps(header, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
        if len(canonical) > size:
            raise DatasetError(f"{path}: sorting the safetensors header made it longer ({len(canonical)} > {size})")
        handle.seek(8)
        handle.write(canonical.ljust(size, b" "))  # the format pads headers with spaces


class _LocalFileDataset(AbstractDataset):
    """A dataset bound to one local file; subclasses say how to read and write it."""

    def __init__(self, filepath: str, metadata: dict[str, Any] | None = None) -> None:
        self._filepath = Path(filepath)
        self.metadata = metadata

    @property
    def filepath(self) -> Path:
        return self._filepath

    def _describe(self) -> dict[str, Any]:
        return {"filepath": str(self._filepath)}

    def _exists(self) -> bool:
        return self._filepath.is_file()

    def _require_file(self) -> Path:
        if not self._filepath.is_file():
            raise MissingInputError(
                f"{self._filepath} does not exist; run the pipeline that produces it first (`kedro run` or `dvc repro`)"
            )
        return self._filepath


def read_metadata(path: Path) -> dict[str, str]:
    """A safetensors file's header metadata alone, without reading its arrays."""
    try:
        with safe_open(path, framework="np") as handle:
            return handle.metadata() or {}
    except (SafetensorError, OSError) as err:
        raise UnreadableFileError(
            f"{path} is not a readable safetensors file ({err}); delete it and rerun the stage that writes it"
        ) from err


def read_tensors(path: Path) -> TensorFile:
    try:
        with safe_open(path, framework="np") as handle:
            metadata = handle.metadata() or {}
            arrays = {name: handle.get_tensor(name) for name in handle.keys()}  # noqa: SIM118
    except (SafetensorError, OSError) as err:
        raise UnreadableFileError(
            f"{path} is not a readable safetensors file ({err}); delete it and rerun the stage that writes it"
        ) from err
    return TensorFile(arrays, metadata, origin=str(path))


def write_tensors(tensors: TensorFile, target: Path) -> None:
    """Atomically, with a sorted header: the same arrays and metadata always give the same bytes."""
    arrays = {name: np.ascontiguousarray(array) for name, array in tensors.arrays.items()}
    with atomic_path(target) as tmp:
        save_file(arrays, tmp, metadata=dict(tensors.metadata))
        sort_safetensors_header(tmp)


class TensorsDataset(_LocalFileDataset):
    """Network weights (or any named arrays) in safetensors, with string metadata in the file header.

    The same arrays and metadata always give the same bytes, so DVC sees an unchanged output as unchanged.

    With ``missing_ok`` an absent file loads as ``None``: for caches that a node may reuse.
    """

    def __init__(self, filepath: str, missing_ok: bool = False, metadata: dict[str, Any] | None = None) -> None:
        super().__init__(filepath, metadata)
        self._missing_ok = missing_ok

    def load(self) -> TensorFile | None:
        if self._missing_ok and not self._filepath.exists():
            return None
        return read_tensors(self._require_file())

    def save(self, data: TensorFile) -> None:
        write_tensors(data, self._filepath)


class SplitDataset(_LocalFileDataset):
    """A dataset split (samples, labels and the record of what they are) in one safetensors file."""

    def load(self) -> Split:
        path = self._require_file()
        return Split.from_tensors(read_tensors(path), str(path))

    def save(self, data: Split) -> None:
        write_tensors(data.to_tensors(), self._filepath)


class TableDataset(_LocalFileDataset):
    """A pandas DataFrame as CSV."""

    def load(self) -> pd.DataFrame:
        return pd.read_csv(self._require_file())

    def save(self, data: pd.DataFrame) -> None:
        with atomic_path(self._filepath) as tmp:
            data.to_csv(tmp, index=False)


class JSONDataset(_LocalFileDataset):
    """A JSON document (metrics, run ids), pretty-printed so diffs read well."""

    def load(self) -> Any:
        return json.loads(self._require_file().read_text())

    def save(self, data: Any) -> None:
        with atomic_path(self._filepath) as tmp:
            tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


class FigureDataset(_LocalFileDataset):
    """A matplotlib figure saved as PNG; the figure is closed after saving."""

    def load(self) -> bytes:
        return self._require_file().read_bytes()

    def save(self, data: Any) -> None:
        import matplotlib.pyplot as plt

        with atomic_path(self._filepath) as tmp:
            data.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
        plt.close(data)


class InMemoryOutput(AbstractDataset):
    """Wraps a dataset on a process that must not write (torchrun ranks other than 0).

    Saves stay in memory so that later nodes of the same run still get them; loads read the
    wrapped dataset until something was saved.
    """

    def __init__(self, dataset: AbstractDataset) -> None:
        self._dataset = dataset
        self._saved: list[Any] = []

    def _describe(self) -> dict[str, Any]:
        return {"in_memory_output_of": self._dataset}

    def _exists(self) -> bool:
        return bool(self._saved) or self._dataset.exists()

    def load(self) -> Any:
        return self._saved[-1] if self._saved else self._dataset.load()

    def save(self, data: Any) -> None:
        self._saved[:] = [data]


@contextmanager
def _quiet(logger_name: str) -> Iterator[None]:
    quieted = logging.getLogger(logger_name)
    level = quieted.level
    quieted.setLevel(logging.ERROR)
    try:
        yield
    finally:
        quieted.setLevel(level)


def keep_outputs_in_memory(catalog: CatalogProtocol) -> None:
    """Off the main torchrun process: every dataset keeps its saves in memory and writes nothing."""
    with _quiet("kedro.io.data_catalog"):  # one "Replacing dataset" notice per entry otherwise
        for name in list(catalog):
            dataset = catalog[name]
            if not isinstance(dataset, MemoryDataset | InMemoryOutput):
                catalog[name] = InMemoryOutput(dataset)
