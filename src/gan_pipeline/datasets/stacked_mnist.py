"""Stacked MNIST (Metz et al. 2017; PacGAN's and VEEGAN's protocol): three MNIST digits as the three
channels of one 28x28 image, so 1,000 modes (``100*a + 10*b + c``) that a 10-class histogram cannot hide.

The digits come from the ``mnist`` release's files (downloaded and verified as the ``mnist`` source does,
or read from ``local_dir``). Every mode is drawn equally often, each channel a random image of its digit:
the real data's mode histogram is exactly uniform, so what the metrics see beyond it is the generator's.
"""

from pathlib import Path

import numpy as np
from pydantic import Field

from gan_pipeline.datasets import RawDataset, register_dataset
from gan_pipeline.datasets.mnist_family import DIGIT_NAMES, MnistOptions, load_idx_release

CHANNELS = 3
NUM_MODES = len(DIGIT_NAMES) ** CHANNELS
MIN_PER_MODE = 5  # a 20 % validation split then holds every mode at least once
CHUNK = 16_384  # triplets gathered at a time: the only copy beside the result is this many images


class StackedMnistOptions(MnistOptions):
    # Triplets drawn (PacGAN trains on 128,000: 287 MiB as uint8), each of the 1,000 modes equally often.
    num_samples: int = Field(128_000, ge=MIN_PER_MODE * NUM_MODES)
    # Seed of the draw: which image of each digit goes into which triplet.
    seed: int = 0


def mode_digits(modes: np.ndarray) -> np.ndarray:
    """``(N,)`` modes -> ``(N, 3)`` digits, most significant (the first channel) first."""
    powers = len(DIGIT_NAMES) ** np.arange(CHANNELS - 1, -1, -1)
    return modes[:, None] // powers % len(DIGIT_NAMES)


def draw_triplets(digit_labels: np.ndarray, num_samples: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(N, 3)`` into the digit images, each mode equally often (to within one), and the modes ``(N,)``."""
    rng = np.random.default_rng(seed)
    modes = rng.permutation(np.arange(num_samples) % NUM_MODES)
    wanted = mode_digits(modes)
    indices = np.empty_like(wanted)
    for digit in range(len(DIGIT_NAMES)):
        chosen = wanted == digit
        indices[chosen] = rng.choice(np.flatnonzero(digit_labels == digit), size=int(chosen.sum()))
    return indices, modes


@register_dataset(
    "stacked_mnist",
    StackedMnistOptions,
    num_samples=lambda options, raw_dir: options.num_samples,
    sample_shape=lambda options, raw_dir: (CHANNELS, 28, 28),
)
def stack_mnist(options: StackedMnistOptions, raw_dir: Path) -> RawDataset:
    """``num_samples`` images ``(N, 3, 28, 28)`` uint8, labelled with their mode ``100*a + 10*b + c``."""
    digits = load_idx_release("mnist", options, raw_dir, configured_as="stacked_mnist")
    indices, modes = draw_triplets(digits.labels, options.num_samples, options.seed)
    images = digits.samples[:, 0]  # (M, 28, 28)
    samples = np.empty((options.num_samples, CHANNELS, *images.shape[1:]), dtype=np.uint8)
    for start in range(0, options.num_samples, CHUNK):
        samples[start : start + CHUNK] = images[indices[start : start + CHUNK]]  # (n, 3, 28, 28)
    return RawDataset(
        samples=samples,
        labels=modes.astype(np.int64),
        class_names=tuple(f"{mode:03d}" for mode in range(NUM_MODES)),
        channel_classes=DIGIT_NAMES,
        card={
            **{key: value for key, value in digits.card.items() if key != "source"},
            "source": "stacked_mnist",
            "digit_source": "mnist",
            "num_digits": len(digits.labels),
            "num_modes": NUM_MODES,
            "seed": options.seed,
        },
    )
