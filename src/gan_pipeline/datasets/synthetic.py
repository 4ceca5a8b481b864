"""2-D Gaussian mixtures that make mode collapse measurable (the PacGAN / VEEGAN protocol).

Every mode has a known centre, so evaluation can count how many modes a generator reaches and
how many of its samples land close to one, instead of judging a picture.
"""

from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
from pydantic import PositiveInt

from gan_pipeline.datasets import RawDataset, SourceOptions, register_dataset

HIGH_QUALITY_STDS = 3.0  # a sample within this many stds of its nearest centre is "high quality"


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


def synthetic_modes(name: str) -> tuple[np.ndarray, float]:
    """Mode centres ``(K, 2)`` and their std for a synthetic dataset, for evaluation."""
    if name not in MIXTURES:
        raise KeyError(f"no synthetic dataset {name!r}; allowed: {sorted(MIXTURES)}")
    mixture = MIXTURES[name]
    return mixture.centres.copy(), mixture.std


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
        card={
            "source": f"synthetic:{name}",
            "seed": options.seed,
            "num_modes": len(mixture.centres),
            "std": mixture.std,
            "numpy_version": np.__version__,
        },
    )


def mode_collapse_metrics(samples: np.ndarray, centres: np.ndarray, std: float) -> dict[str, float]:
    """Modes reached and share of high-quality samples (within 3 std of their nearest centre).

    A mode counts as covered when at least one high-quality sample has it as nearest centre.
    """
    samples = np.asarray(samples, dtype=np.float64)
    if samples.ndim != 2 or samples.shape[1] != centres.shape[1] or len(samples) == 0:
        raise ValueError(f"samples must be a non-empty (N, {centres.shape[1]}) array, got shape {samples.shape}")
    distances = np.linalg.norm(samples[:, None, :] - centres[None, :, :], axis=2)  # (N, K)
    nearest = distances.argmin(axis=1)
    high_quality = distances[np.arange(len(samples)), nearest] <= HIGH_QUALITY_STDS * std
    return {
        "modes_covered": float(len(np.unique(nearest[high_quality]))),
        "num_modes": float(len(centres)),
        "high_quality_share": float(high_quality.mean()),
    }


def requested_samples(options: SyntheticOptions) -> int:
    return options.num_samples


register_dataset("ring8", SyntheticOptions, requested_samples, lambda options: (2,))(partial(sample_mixture, "ring8"))
register_dataset("grid25", SyntheticOptions, requested_samples, lambda options: (2,))(partial(sample_mixture, "grid25"))
