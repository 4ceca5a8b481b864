"""Evaluation: fit (or reuse) the judge, compute metrics, log and register the generator."""

import hashlib
import json
import logging
from typing import Any

import numpy as np
import torch

from gan_pipeline.config import EvaluationParams, parse_params
from gan_pipeline.datasets.synthetic import MIXTURES, mode_collapse_metrics, synthetic_modes
from gan_pipeline.gan.judge import Judge, train_judge
from gan_pipeline.gan.metrics import METRICS, MetricInputs, compute_metrics
from gan_pipeline.gan.runtime import resolve_device
from gan_pipeline.gan.serialization import METADATA, generator_from_tensors, load_state, module_to_tensors
from gan_pipeline.gan.training import sample_images
from gan_pipeline.plots import sample_grid_figure
from gan_pipeline.tracking import log_generator, log_metrics

logger = logging.getLogger(__name__)


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
    """Score generated samples against the real validation split; log the metrics."""
    config = parse_params(EvaluationParams, "evaluation", params)
    device = resolve_device(config.device)
    net = generator_from_tensors(generator).to(device)
    if np.asarray(train_set["samples"]).ndim == 2:
        return evaluate_mode_coverage(net, train_set, config)
    train_images, _ = _tensors(train_set)
    val_images, val_labels = _tensors(validation_set)
    count = len(train_images) if config.num_generated == "match_train" else config.num_generated
    generated = _generate(net, count, config.seed)
    inputs = MetricInputs(
        judge=_judge_from_tensors(judge),
        real_train=train_images,
        real_validation=val_images,
        validation_labels=val_labels,
        generated=generated,
        confidence_threshold=config.confidence_threshold,
    )
    metrics = compute_metrics(list(METRICS), inputs)
    metrics["num_generated"] = float(count)
    log_metrics(metrics)
    return {
        "metrics": metrics,
        "evaluation_samples": sample_grid_figure(generated[:64], "Generated samples (evaluation seed)"),
    }


def _generate(net: torch.nn.Module, count: int, seed: int) -> torch.Tensor:
    device = next(net.parameters()).device
    latent = torch.randn(
        count, net.arch.latent_dim, generator=torch.Generator(device=device).manual_seed(seed), device=device
    )
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
    generated = _generate(net, config.synthetic_num_samples, config.seed)
    metrics = {**mode_collapse_metrics(generated.numpy(), centres, std), "num_generated": float(len(generated))}
    log_metrics(metrics)
    modes = f"{metrics['modes_covered']:.0f}/{metrics['num_modes']:.0f} modes"
    title = f"{modes}, {metrics['high_quality_share']:.0%} high quality"
    return {"metrics": metrics, "evaluation_samples": sample_grid_figure(generated, title, modes=centres)}


def register_generator(generator: dict[str, Any], metrics: dict[str, float], params: dict[str, Any]) -> dict[str, Any]:
    """Log the evaluated generator to MLflow and register a new model version."""
    config = parse_params(EvaluationParams, "evaluation", params)
    name = config.registered_model_name if config.register_model else None
    return log_generator(generator_from_tensors(generator), name)
