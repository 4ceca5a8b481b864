"""What a judge-space Frechet ratio means: the ratio that small, known damage to real images scores.

Fits the judge as the evaluation does, then scores the real training split, perturbed, against the
validation split, and divides by the unperturbed floor: the same ratio the evaluation reports for a
generator. A generator whose samples were real digits with one of these defects would score that row.

    .venv/bin/python benchmarks/judge_sensitivity.py   # the dataset of conf/base (digits)
"""

import argparse
from collections.abc import Callable

import pandas as pd
import torch
import torch.nn.functional as F
from digits_quality import base_parameters

from gan_pipeline.config.run import validate_parameters
from gan_pipeline.gan.judge import Judge, train_judge
from gan_pipeline.gan.metrics import frechet_distance_of_features, judge_outputs
from gan_pipeline.pipelines.data_ingestion.nodes import ingest_dataset
from gan_pipeline.pipelines.data_processing.nodes import split_dataset

Perturbation = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def grey_level(images: torch.Tensor) -> float:
    """The data's quantisation step: the smallest gap between distinct pixel values."""
    return float(images.unique().diff().min())


def gaussian(sigma: float) -> Perturbation:
    return lambda images, rng: (images + sigma * torch.randn(images.shape, generator=rng)).clamp(-1, 1)


def strokes_only(perturb: Perturbation) -> Perturbation:
    """``perturb`` applied to the strokes; the background (exactly -1) is left as it was."""
    return lambda images, rng: torch.where(images == -1, images, perturb(images, rng))


def dequantised(images: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """Uniform noise across each pixel's grey-level bin, centred: every pixel still rounds to its own level."""
    return (images + grey_level(images) * (torch.rand(images.shape, generator=rng) - 0.5)).clamp(-1, 1)


def background_lifted(levels: float) -> Perturbation:
    """The background (exactly -1) ``levels`` grey levels lighter, the strokes unchanged."""
    return lambda images, rng: torch.where(images == -1, images + levels * grey_level(images), images)


def blurred(share: float) -> Perturbation:
    kernel = torch.tensor([[1.0, 2, 1], [2, 4, 2], [1, 2, 1]]).div(16).view(1, 1, 3, 3)

    def blur(images: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
        channels = images.shape[1]
        smooth = F.conv2d(F.pad(images, (1, 1, 1, 1), value=-1.0), kernel.repeat(channels, 1, 1, 1), groups=channels)
        return (1 - share) * images + share * smooth

    return blur


def dimmer(factor: float) -> Perturbation:
    """Strokes ``factor`` as bright, the background (-1) unchanged."""
    return lambda images, rng: (images + 1) * factor - 1


PERTURBATIONS: dict[str, Perturbation] = {
    # Clamping to [-1, 1] makes the noise one-sided on the background: it also lifts the background.
    "gaussian noise, sigma 0.05": gaussian(0.05),
    "gaussian noise, sigma 0.1": gaussian(0.1),
    "gaussian noise, sigma 0.2": gaussian(0.2),
    "gaussian noise on the strokes only, sigma 0.1": strokes_only(gaussian(0.1)),
    "gaussian noise on the strokes only, sigma 0.2": strokes_only(gaussian(0.2)),
    "uniform noise within each pixel's grey level": dequantised,
    "background a quarter of a grey level lighter": background_lifted(0.25),
    "background half a grey level lighter": background_lifted(0.5),
    "25% of a 3x3 blur mixed in": blurred(0.25),
    "strokes 5% dimmer": dimmer(0.95),
    "strokes 10% dimmer": dimmer(0.9),
}


def sensitivity_table(
    judge: Judge, train: torch.Tensor, validation: torch.Tensor, perturbations: dict[str, Perturbation], seed: int = 0
) -> pd.DataFrame:
    """Frechet distance of each perturbed training split against the validation split, and its ratio to the floor."""
    reference = judge_outputs(judge, validation).features
    rng = torch.Generator().manual_seed(seed)
    perturbed = [judge_outputs(judge, perturb(train, rng)).features for perturb in perturbations.values()]
    distances = frechet_distance_of_features(reference, [judge_outputs(judge, train).features, *perturbed])
    table = pd.DataFrame({"perturbation": ["none (the floor)", *perturbations], "frechet_distance": distances})
    return table.assign(ratio=table.frechet_distance / distances[0])


def main() -> None:
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    params = validate_parameters(base_parameters())
    splits = split_dataset(ingest_dataset(params.data_ingestion)["raw_dataset"], params.data_processing)
    train, labels = torch.as_tensor(splits["train_set"].samples), torch.as_tensor(splits["train_set"].labels)
    validation = torch.as_tensor(splits["validation_set"].samples)
    judge = train_judge(train, labels, int(labels.max()) + 1, params.evaluation.judge.settings())
    print(f"grey level: {grey_level(train):.4g}; {len(train)} training vs {len(validation)} validation images")
    table = sensitivity_table(judge, train, validation, PERTURBATIONS)
    print(table.to_string(index=False, float_format="%.3g"))


if __name__ == "__main__":
    main()
