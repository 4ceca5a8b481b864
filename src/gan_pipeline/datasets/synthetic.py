"""2-D Gaussian mixtures that make mode collapse measurable (the PacGAN / VEEGAN protocol).

Every mode has a known centre, recorded with the data, so evaluation can count how many modes a
generator reaches and how many of its samples land close to one, instead of judging a picture.
"""

from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
from pydantic import PositiveInt

from gan_pipeline.datasets import RawDataset, SourceOptions, register_dataset
from gan_pipeline.splits import MixtureModes


@dataclass(frozen=True)
class GaussianMixture:
    centres: np.ndarray  # (K, 2) float64
    std: float  # isotropic, the same for every mode


def ring_centres(num_modes: int, radius: float) -> np.ndarray:
    angles = 2 * np.pi * np.arange(num_modes) / num_modes
    return radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)


def grid_centres(coordinates: list[float]) -> np.ndarray:
    xs, ys = np.meshgrid(coordinates, coordinates, indexing="ij")
    return np.stack([xs.ravel(), ys.ravel()], axis=1)


MIXTURES = {
    "ring8": GaussianMixture(centres=ring_centres(8, radius=1.0), std=0.01),
    "grid25": GaussianMixture(centres=grid_centres([-4.0, -2.0, 0.0, 2.0, 4.0]), std=0.05),
}


class SyntheticOptions(SourceOptions):
    # Points drawn; modes are picked uniformly at random.
    num_samples: PositiveInt = 50_000
    seed: int = 0


def sample_mixture(name: str, options: SyntheticOptions, raw_dir: Path) -> RawDataset:
    """``num_samples`` points ``(N, 2)`` float32, labelled with the index of the mode they came from.

    ``raw_dir`` is unused: the data is generated, nothing is downloaded.
    """
    mixture = MIXTURES[name]
    rng = np.random.default_rng(options.seed)
    labels = rng.integers(len(mixture.centres), size=options.num_samples)
    points = mixture.centres[labels] + rng.normal(scale=mixture.std, size=(options.num_samples, 2))
    return RawDataset(
        samples=points.astype(np.float32),
        labels=labels.astype(np.int64),
        class_names=tuple(f"mode {index}" for index in range(len(mixture.centres))),
        modes=MixtureModes(tuple(map(tuple, mixture.centres.tolist())), mixture.std),
        card={
            "source": f"synthetic:{name}",
            "seed": options.seed,
            "num_modes": len(mixture.centres),
            "std": mixture.std,
            "numpy_version": np.__version__,
        },
    )


def requested_samples(options: SyntheticOptions, raw_dir: Path) -> int:
    return options.num_samples


for mixture_name in MIXTURES:
    register_dataset(mixture_name, SyntheticOptions, requested_samples, lambda options, raw_dir: (2,))(
        partial(sample_mixture, mixture_name)
    )
