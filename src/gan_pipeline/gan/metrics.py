"""Generator quality metrics in the judge's feature space, by name.

Each metric takes a ``MetricInputs`` and returns a flat dict of floats; the evaluation
parameters list which to compute.
"""

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torchmetrics.image.fid import FrechetInceptionDistance

from gan_pipeline.gan.judge import Judge, JudgeFeatures, predict_proba


@dataclass(frozen=True)
class MetricInputs:
    judge: Judge
    real_train: torch.Tensor  # (N, C, H, W) in [-1, 1]
    real_validation: torch.Tensor
    validation_labels: torch.Tensor
    generated: torch.Tensor
    confidence_threshold: float = 0.9


def frechet_distance(judge: Judge, first: torch.Tensor, second: torch.Tensor, batch_size: int = 1024) -> float:
    """FID computed by torchmetrics, with the judge's penultimate layer as the feature extractor."""
    metric = FrechetInceptionDistance(feature=JudgeFeatures(judge).eval(), normalize=True)
    with torch.no_grad():
        for chunk in first.split(batch_size):
            metric.update(chunk, real=True)
        for chunk in second.split(batch_size):
            metric.update(chunk, real=False)
    return float(metric.compute())


def judge_accuracy(inputs: MetricInputs) -> dict[str, float]:
    predictions = predict_proba(inputs.judge, inputs.real_validation).argmax(dim=1)
    return {"judge_val_accuracy": (predictions == inputs.validation_labels).float().mean().item()}


def frechet_distances(inputs: MetricInputs) -> dict[str, float]:
    """Generated vs real validation, and real train vs real validation as the floor."""
    generated = frechet_distance(inputs.judge, inputs.real_validation, inputs.generated)
    floor = frechet_distance(inputs.judge, inputs.real_validation, inputs.real_train)
    return {
        "frechet_distance": generated,
        "frechet_distance_real_floor": floor,
        "frechet_distance_ratio": generated / floor if floor > 0 else float("inf"),
    }


def mode_coverage(inputs: MetricInputs) -> dict[str, float]:
    """Classes the judge finds among generated samples, and KL(generated || real) of class shares."""
    num_classes = inputs.judge.num_classes
    probabilities = predict_proba(inputs.judge, inputs.generated)
    confident = probabilities.max(dim=1).values >= inputs.confidence_threshold
    generated_hist = torch.bincount(probabilities.argmax(dim=1), minlength=num_classes).double()
    real_hist = torch.bincount(inputs.validation_labels, minlength=num_classes).double()
    p, q = generated_hist / generated_hist.sum(), real_hist / real_hist.sum()
    kl = torch.where(p > 0, p * (p / q.clamp_min(1e-12)).log(), torch.zeros_like(p)).sum()
    return {
        "classes_covered": float((generated_hist > 0).sum()),
        "num_classes": float(num_classes),
        "class_kl_divergence": kl.item(),
        "confident_share": confident.double().mean().item(),
    }


METRICS: dict[str, Callable[[MetricInputs], dict[str, float]]] = {
    "judge_accuracy": judge_accuracy,
    "frechet_distance": frechet_distances,
    "mode_coverage": mode_coverage,
}


def compute_metrics(names: list[str], inputs: MetricInputs) -> dict[str, float]:
    results: dict[str, float] = {}
    for name in names:
        results.update(METRICS[name](inputs))
    return results
