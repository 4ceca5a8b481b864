"""scikit-learn's bundled 8x8 handwritten digits: real data with no download."""

import hashlib
from pathlib import Path

import numpy as np
import sklearn
from sklearn.datasets import load_digits

from gan_pipeline.datasets import RawDataset, SourceOptions, register_dataset

DIGITS_MAX_INTENSITY = 16  # load_digits pixels are integers in [0, 16]
DIGITS_COUNT = 1797


@register_dataset("digits", num_samples=lambda options: DIGITS_COUNT, sample_shape=lambda options: (1, 8, 8))
def load_sklearn_digits(options: SourceOptions, raw_dir: Path) -> RawDataset:
    bunch = load_digits()
    images = np.rint(bunch.images * (255 / DIGITS_MAX_INTENSITY)).astype(np.uint8)[:, None]
    labels = bunch.target.astype(np.int64)
    return RawDataset(
        samples=images,
        labels=labels,
        card={
            "source": "sklearn.datasets.load_digits",
            "sklearn_version": sklearn.__version__,
            "sha256": hashlib.sha256(images.tobytes() + labels.tobytes()).hexdigest(),
        },
    )
