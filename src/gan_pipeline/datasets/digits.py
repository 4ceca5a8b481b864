"""scikit-learn's bundled 8x8 handwritten digits: real data with no download."""

import hashlib
from pathlib import Path

import numpy as np
from pydantic import PositiveInt

from gan_pipeline.datasets import RawDataset, SourceOptions, register_dataset

DIGITS_MAX_INTENSITY = 16  # load_digits pixels are integers in [0, 16]
DIGITS_COUNT = 1797


class DigitsOptions(SourceOptions):
    # Keep only the first N images (scikit-learn's order); null keeps all 1,797. Growing it is how a
    # scheduled retraining sees "new data arrived" offline.
    max_samples: PositiveInt | None = None


def digits_count(options: DigitsOptions, raw_dir: Path | None = None) -> int:
    return min(DIGITS_COUNT, options.max_samples or DIGITS_COUNT)


@register_dataset("digits", DigitsOptions, num_samples=digits_count, sample_shape=lambda options, raw_dir: (1, 8, 8))
def load_sklearn_digits(options: DigitsOptions, raw_dir: Path) -> RawDataset:
    import sklearn  # here, not at the top: every `kedro` command validates the sources, few load this one
    from sklearn.datasets import load_digits

    bunch = load_digits()
    count = digits_count(options)
    images = np.rint(bunch.images[:count] * (255 / DIGITS_MAX_INTENSITY)).astype(np.uint8)[:, None]
    labels = bunch.target[:count].astype(np.int64)
    return RawDataset(
        samples=images,
        labels=labels,
        class_names=tuple(str(digit) for digit in range(10)),
        card={
            "source": "sklearn.datasets.load_digits",
            "sklearn_version": sklearn.__version__,
            "sha256": hashlib.sha256(images.tobytes() + labels.tobytes()).hexdigest(),
        },
    )
