"""Evaluation: fit (or reuse) the judge, compute metrics, log and register the generator."""

import hashlib
import json
import logging
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure

from gan_pipeline.config import EvaluationParams, parse_params
from gan_pipeline.datasets.synthetic import MIXTURES, mode_collapse_metrics, synthetic_modes
from gan_pipeline.gan.judge import Judge, train_judge
from gan_pipeline.gan.latent import interpolation_latents
from gan_pipeline.gan.metrics import METRICS, MetricInputs, class_histograms, compute_metrics, nearest_neighbours
from gan_pipeline.gan.runtime import resolve_device
from gan_pipeline.gan.serialization import METADATA, generator_from_tensors, load_state, module_to_tensors
from gan_pipeline.gan.training import sample_images
from gan_pipeline.plots import (
    class_histogram_figure,
    interpolation_strip_figure,
    nearest_neighbours_figure,
    note_figure,
    sample_grid_figure,
)
from gan_pipeline.promotion import RESCORED_PREFIX, RESCORED_VERSION_TAG
from gan_pipeline.registry import CHAMPION
from gan_pipeline.tracking import log_generator, log_metrics, registered_generator

logger = logging.getLogger(__name__)

# What the gate and the retraining report need of a champion scored again with a new judge.
RESCORED_METRICS = ["frechet_distance", "mode_coverage", "precision_recall_density_coverage"]


def _tensors(split: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.from_numpy(np.asarray(split["samples"])), torch.from_numpy(np.asarray(split["labels"]))


def judge_fingerprint(train_set: dict[str, Any], params: EvaluationParams) -> str:
    """Identifies the judge's inputs: the same fingerprint means the same judge would be trained."""
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(train_set["samples"]).tobytes())
    digest.update(np.ascontiguousarray(train_set["labels"]).tobytes())
    digest.update(params.judge.model_dump_json().encode())
    return digest.hexdigest()


def _judge_from_tensors(tensors: dict[str, Any]) -> Judge:
    meta = tensors[METADATA]
    judge = Judge(tuple(json.loads(meta["image_shape"])), int(meta["num_classes"]), int(meta["feature_dim"]))
    return load_state(judge, tensors).eval()


def fit_judge(train_set: dict[str, Any], previous_judge: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """Train the judge on the real training split, or reuse the saved one if its inputs match."""
    config = parse_params(EvaluationParams, "evaluation", params)
    fingerprint = judge_fingerprint(train_set, config)
    if np.asarray(train_set["samples"]).ndim == 2:
        return {METADATA: {"fingerprint": fingerprint, "judge": "none: vectors are scored against their known modes"}}
    if previous_judge.get(METADATA, {}).get("fingerprint") == fingerprint:
        logger.info("Reusing the judge: its training data and parameters are unchanged")
        return previous_judge
    images, labels = _tensors(train_set)
    num_classes = int(labels.max()) + 1
    judge = train_judge(images, labels, num_classes, config.judge)
    return module_to_tensors(
        judge,
        fingerprint=fingerprint,
        image_shape=json.dumps(list(images.shape[1:])),
        num_classes=num_classes,
        feature_dim=config.judge.feature_dim,
    )


def evaluate_generator(
    generator: dict[str, Any],
    judge: dict[str, Any],
    train_set: dict[str, Any],
    validation_set: dict[str, Any],
    params: dict[str, Any],
) -> dict[str, Any]:
    """Score generated samples against the real splits; log the metrics; draw the evaluation figures."""
    config = parse_params(EvaluationParams, "evaluation", params)
    device = resolve_device(config.device)
    net = generator_from_tensors(generator).to(device)
    if np.asarray(train_set["samples"]).ndim == 2:
        return evaluate_mode_coverage(net, train_set, config)
    rng = torch.Generator(device=device).manual_seed(config.seed)
    inputs = _metric_inputs(net, judge, train_set, validation_set, config, rng)
    metrics = compute_metrics(list(METRICS), inputs)
    metrics["num_generated"] = float(len(inputs.generated))
    log_metrics(metrics)
    path_latents = interpolation_latents(
        config.interpolation_rows, config.interpolation_steps, net.arch.latent_dim, rng
    )
    return {
        "metrics": metrics,
        "evaluation_samples": sample_grid_figure(inputs.generated[:64], "Generated samples (evaluation seed)"),
        "class_histogram": class_histogram_figure(*class_histograms(inputs)),
        "latent_interpolation": interpolation_strip_figure(
            sample_images(net, path_latents), config.interpolation_steps
        ),
        "nearest_neighbours": _nearest_neighbours_panel(inputs, config.nearest_neighbour_rows),
    }


def _generated_count(train_set: dict[str, Any], config: EvaluationParams) -> int:
    return len(train_set["samples"]) if config.num_generated == "match_train" else config.num_generated


def _metric_inputs(
    net: torch.nn.Module,
    judge: dict[str, Any],
    train_set: dict[str, Any],
    validation_set: dict[str, Any],
    config: EvaluationParams,
    rng: torch.Generator,
) -> MetricInputs:
    """Samples from ``rng``'s latents beside the real splits; every generator given one seed gets the same latents."""
    train_images, _ = _tensors(train_set)
    val_images, val_labels = _tensors(validation_set)
    count = _generated_count(train_set, config)
    generated, *more_generated = _generate(net, count * config.frechet_draws, rng).split(count)
    return MetricInputs(
        judge=_judge_from_tensors(judge).to(rng.device),
        real_train=train_images,
        real_validation=val_images,
        validation_labels=val_labels,
        generated=generated,
        more_generated=tuple(more_generated),
        confidence_threshold=config.confidence_threshold,
        nearest_k=config.nearest_k,
        inception_score_splits=config.inception_score_splits,
        memorisation_samples=config.memorisation_samples,
        seed=config.seed,
    )


def _generate(net: torch.nn.Module, count: int, rng: torch.Generator) -> torch.Tensor:
    latent = torch.randn(count, net.arch.latent_dim, generator=rng, device=rng.device)
    return torch.cat([sample_images(net, chunk) for chunk in latent.split(1024)])


def evaluate_mode_coverage(net: torch.nn.Module, train_set: dict[str, Any], config: EvaluationParams) -> dict[str, Any]:
    """The 2-D benchmark protocol: modes reached by high-quality samples, and their share."""
    dataset = train_set.get(METADATA, {}).get("dataset", "")
    if dataset not in MIXTURES:
        raise ValueError(
            f"vector dataset {dataset!r} has no known modes to score against; vector evaluation supports "
            f"{sorted(MIXTURES)}"
        )
    centres, std = synthetic_modes(dataset)
    rng = torch.Generator(device=next(net.parameters()).device).manual_seed(config.seed)
    generated = _generate(net, config.synthetic_num_samples, rng)
    metrics = {**mode_collapse_metrics(generated.numpy(), centres, std), "num_generated": float(len(generated))}
    log_metrics(metrics)
    modes = f"{metrics['modes_covered']:.0f}/{metrics['num_modes']:.0f} modes"
    title = f"{modes}, {metrics['high_quality_share']:.0%} high quality"
    nearest_mode = torch.cdist(generated, torch.from_numpy(centres).float()).argmin(dim=1)
    real_labels = torch.from_numpy(np.asarray(train_set["labels"]))
    path_latents = interpolation_latents(
        config.interpolation_rows, config.interpolation_steps, net.arch.latent_dim, rng
    )
    return {
        "metrics": metrics,
        "evaluation_samples": sample_grid_figure(generated, title, modes=centres),
        "class_histogram": class_histogram_figure(
            _shares(nearest_mode, len(centres)), _shares(real_labels, len(centres))
        ),
        "latent_interpolation": sample_grid_figure(sample_images(net, path_latents), "Latent interpolation", centres),
        "nearest_neighbours": note_figure("No memorisation panel: 2-D samples are points, not images to compare."),
    }


def _shares(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    counts = torch.bincount(labels, minlength=num_classes).double()
    return counts / counts.sum()


def _nearest_neighbours_panel(inputs: MetricInputs, rows: int, neighbours: int = 5) -> Figure:
    """The generated samples closest to the training set, each beside its nearest training images."""
    distances, _ = inputs.generated_to_train
    suspects = inputs.generated[distances.argsort()[:rows]]
    neighbour_distances, indices = nearest_neighbours(
        suspects, inputs.real_train, k=min(neighbours, len(inputs.real_train))
    )
    return nearest_neighbours_figure(suspects, inputs.real_train[indices], neighbour_distances)


def version_tags(train_set: dict[str, Any], judge: dict[str, Any], config: EvaluationParams) -> dict[str, str]:
    """What a version's metrics can be compared with: the dataset, the judge and the sample count."""
    return {
        "dataset": train_set.get(METADATA, {}).get("dataset", "unknown"),
        "judge_fingerprint": judge[METADATA]["fingerprint"],
        "num_generated": str(_generated_count(train_set, config)),
    }


def rescore_champion(
    metrics: dict[str, float],
    judge: dict[str, Any],
    train_set: dict[str, Any],
    validation_set: dict[str, Any],
    params: dict[str, Any],
) -> dict[str, Any]:
    """Score the champion again when new data or a new judge made its metrics incomparable with ``metrics``.

    The champion's generator gets this run's judge, data and latents; its metrics are logged on this run as
    ``champion.<metric>`` for the promotion gate. Returns the version rescored, or ``{}`` when there is no
    champion, nothing to redo, or the champion cannot be scored here (the gate then refuses, saying why).
    """
    config = parse_params(EvaluationParams, "evaluation", params)
    if not config.register_model or "frechet_distance" not in metrics:  # vector data: no judge, no gate
        return {}
    current = version_tags(train_set, judge, config)
    champion = registered_generator(config.model_name(current["dataset"]), CHAMPION)
    if champion is None:
        return {}
    version, tags, generator = champion
    if all(tags.get(tag) == value for tag, value in current.items()):
        return {}
    try:
        net = generator_from_tensors(generator).to(resolve_device(config.device))
    except (KeyError, ValueError, RuntimeError) as err:
        logger.warning("Cannot rebuild champion version %s with this code to rescore it: %s", version, err)
        return {}
    if tuple(net.arch.sample_shape) != tuple(np.asarray(train_set["samples"]).shape[1:]):
        logger.warning("Champion version %s makes samples of shape %s, not this data's", version, net.arch.sample_shape)
        return {}
    rng = torch.Generator(device=next(net.parameters()).device).manual_seed(config.seed)
    rescored = compute_metrics(RESCORED_METRICS, _metric_inputs(net, judge, train_set, validation_set, config, rng))
    log_metrics({f"{RESCORED_PREFIX}{key}": value for key, value in rescored.items()})
    logger.info(
        "Rescored champion version %s with this run's judge and data: frechet_distance %.4g",
        version,
        rescored["frechet_distance"],
    )
    return {"version": version, "metrics": rescored}


def register_generator(
    generator: dict[str, Any],
    judge: dict[str, Any],
    train_set: dict[str, Any],
    metrics: dict[str, float],
    champion_rescore: dict[str, Any],
    params: dict[str, Any],
) -> dict[str, Any]:
    """Log the evaluated generator to MLflow as a pyfunc model; register it as its dataset's new challenger.

    Its version tags say what its metrics can be compared with, and which champion this run rescored.
    Taking ``metrics`` orders it after scoring, so only a generator with metrics becomes a challenger.
    """
    config = parse_params(EvaluationParams, "evaluation", params)
    tags = version_tags(train_set, judge, config)
    if champion_rescore:
        tags[RESCORED_VERSION_TAG] = champion_rescore["version"]
    name = config.model_name(tags["dataset"]) if config.register_model else None
    return log_generator(generator, name, tags)
