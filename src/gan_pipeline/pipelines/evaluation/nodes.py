"""Evaluation: fit (or reuse) the judge, compute metrics, log and register the generator."""

import hashlib
import logging
import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from matplotlib.figure import Figure
from tqdm.auto import tqdm

from gan_pipeline.config.base import parameter_errors
from gan_pipeline.config.evaluation import EvaluationParams
from gan_pipeline.errors import UserError
from gan_pipeline.gan.files import TensorFile
from gan_pipeline.gan.judge import judge_from_tensors, judge_to_tensors, train_judge
from gan_pipeline.gan.latent import interpolation_latents
from gan_pipeline.gan.metrics import (
    REQUESTED_METRICS,
    VECTOR_METRICS,
    KnownModes,
    MetricInputs,
    class_histograms,
    compute_metrics,
    image_metrics,
    nearest_modes,
    nearest_neighbours,
    stacked_mode_labels,
)
from gan_pipeline.gan.networks import build_generator
from gan_pipeline.gan.runtime import resolve_device
from gan_pipeline.gan.serialization import WeightsError, generator_from_tensors
from gan_pipeline.gan.training import sample_images
from gan_pipeline.io import UnreadableFileError
from gan_pipeline.plots import (
    class_histogram_figure,
    interpolation_strip_figure,
    mode_counts_figure,
    nearest_neighbours_figure,
    note_figure,
    sample_grid_figure,
)
from gan_pipeline.pretrained import inception_network, inception_weights
from gan_pipeline.registry import CHAMPION, RESCORED_PREFIX, RESCORED_VERSION_TAG, log_generator, registered_generator
from gan_pipeline.splits import Split
from gan_pipeline.tracking import log_metrics, set_tags

logger = logging.getLogger(__name__)

# What the gate and the retraining report need of a champion scored again with a new judge.
RESCORED_METRICS = ("frechet_distance", "mode_coverage", "precision_recall_density_coverage")


class NotStackedError(UserError, ValueError):
    """A channel judge asked for on data whose channels are not images of classes."""


class NoKnownModesError(UserError, ValueError):
    """Vector data without the modes its generators are scored against."""


def _tensors(split: Split) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.from_numpy(np.asarray(split.samples)), torch.from_numpy(np.asarray(split.labels))


def is_vector_data(split: Split) -> bool:
    return len(split.record.sample_shape) == 1


def judge_fingerprint(train_set: Split, params: EvaluationParams) -> str:
    """Identifies the judge's inputs: the same fingerprint means the same judge would be trained."""
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(train_set.samples).tobytes())
    digest.update(np.ascontiguousarray(train_set.labels).tobytes())
    digest.update(params.judge.model_dump_json().encode())
    return digest.hexdigest()


def fit_judge(train_set: Split, previous_judge: TensorFile | None, params: EvaluationParams) -> TensorFile:
    """Train the judge on the real training split, or reuse the saved one if its inputs match."""
    fingerprint = judge_fingerprint(train_set, params)
    if is_vector_data(train_set):
        return TensorFile(
            {}, {"fingerprint": fingerprint, "judge": "none: vectors are scored against their known modes"}
        )
    if previous_judge is not None and previous_judge.metadata.get("fingerprint") == fingerprint:
        logger.info("Reusing the judge: its training data and parameters are unchanged")
        return previous_judge
    images, labels = _judge_sample(train_set, params)
    record = train_set.record
    task = params.judge.resolved_task(len(record.class_names), stacked=record.channel_classes is not None)
    if task == "channels" and record.channel_classes is None:
        raise NotStackedError(
            f"evaluation.judge.task is 'channels' but {record.dataset!r} is not stacked data (such as "
            "stacked_mnist): set it to auto, classes or rotation"
        )
    num_classes = len(record.channel_classes) if task == "channels" else len(record.class_names)
    judge = train_judge(images, labels, num_classes, params.judge.settings(task, params.progress_bar))
    return judge_to_tensors(judge, fingerprint=fingerprint)


def _judge_sample(train_set: Split, params: EvaluationParams) -> tuple[torch.Tensor, torch.Tensor]:
    """The training split, or a seeded subset of ``judge.max_samples`` of it: a judge of digits needs no
    128,000 stacked triplets to read them."""
    images, labels = _tensors(train_set)
    limit = params.judge.max_samples
    if limit is None or len(images) <= limit:
        return images, labels
    chosen = torch.randperm(len(images), generator=torch.Generator().manual_seed(params.judge.seed))[:limit].sort()
    return images[chosen.values], labels[chosen.values]


def generator_network(tensors: TensorFile) -> torch.nn.Module:
    """The generator a weights file rebuilds; another network's file is refused naming the file and the fix."""
    try:
        return generator_from_tensors(tensors)
    except WeightsError as err:
        raise UnreadableFileError(
            f"{tensors.origin or 'the generator weights'} {err}. Rerun the training (kedro run --pipelines "
            "training), or restore the file the pipeline wrote (dvc checkout)"
        ) from err


def evaluate_generator(
    generator: TensorFile, judge: TensorFile, train_set: Split, validation_set: Split, params: EvaluationParams
) -> dict[str, Any]:
    """Score generated samples against the real splits; log the metrics; draw the evaluation figures."""
    with parameter_errors("evaluation"):
        device = resolve_device(params.device)
        net = generator_network(generator).to(device)
        rng = torch.Generator(device=device).manual_seed(params.seed)
        if is_vector_data(train_set):
            return evaluate_mode_coverage(net, train_set, validation_set, params, rng)
        inputs = _metric_inputs(net, judge, train_set, validation_set, params, rng)
        inputs = replace(inputs, untrained=_untrained_draw(net, len(inputs.generated), params.seed))
        names = image_metrics(inputs.judged_by)
        if params.inception:
            inputs = replace(inputs, inception=_inception(params, device))
            names += REQUESTED_METRICS
        metrics = compute_metrics(names, inputs)
    metrics["num_generated"] = float(len(inputs.generated))
    log_metrics(metrics)
    path_latents = interpolation_latents(
        params.interpolation_rows, params.interpolation_steps, net.arch.latent_dim, rng
    )
    return {
        "metrics": metrics,
        "evaluation_samples": sample_grid_figure(inputs.generated[:64], "Generated samples (evaluation seed)"),
        "class_histogram": _class_histogram(inputs),
        "latent_interpolation": interpolation_strip_figure(
            sample_images(net, path_latents), params.interpolation_steps
        ),
        "nearest_neighbours": _nearest_neighbours_panel(inputs, params.nearest_neighbour_rows),
    }


def _inception(params: EvaluationParams, device: torch.device) -> torch.nn.Module:
    """Inception-v3 for FID and KID; the run's tag ``inception_weights`` says whether it is the reference."""
    weights = inception_weights(params.inception_weights)
    if not weights.reference:
        logger.warning(
            "%s is not the reference Inception-v3: its FID and KID compare with no published figure", weights.path
        )
    set_tags({"inception_weights": "reference" if weights.reference else f"not the reference: {weights.path}"})
    return inception_network(weights).to(device)


def _generated_count(train_set: Split, params: EvaluationParams) -> int:
    return len(train_set.samples) if params.num_generated == "match_train" else params.num_generated


def _metric_inputs(
    net: torch.nn.Module,
    judge: TensorFile,
    train_set: Split,
    validation_set: Split,
    params: EvaluationParams,
    rng: torch.Generator,
) -> MetricInputs:
    """Samples from ``rng``'s latents beside the real splits; every generator given one seed gets the same latents."""
    train_images, _ = _tensors(train_set)
    val_images, val_labels = _tensors(validation_set)
    count = _generated_count(train_set, params)
    draws = params.draws(count, math.prod(train_set.record.sample_shape))
    generated, *more_generated = _generate(net, count * draws, rng, params.progress_bar).split(count)
    return MetricInputs(
        judge=judge_from_tensors(judge).to(rng.device),
        real_train=train_images,
        real_validation=val_images,
        validation_labels=val_labels,
        generated=generated,
        scoring=params.scoring(),
        more_generated=tuple(more_generated),
    )


def _untrained_draw(net: torch.nn.Module, count: int, seed: int) -> torch.Tensor:
    """What ``net``'s architecture makes as training starts it (seeded), from the first draw's latents: the score a
    first champion must beat. Only the evaluated generator needs it, not a rescored champion."""
    device = next(net.parameters()).device
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        untrained = build_generator(net.arch).to(device)
    rng = torch.Generator(device=device).manual_seed(seed)
    return _generate(untrained, count, rng, sample=_sample_with_batch_statistics)


@torch.no_grad()
def _sample_with_batch_statistics(net: torch.nn.Module, latent: torch.Tensor) -> torch.Tensor:
    """BatchNorm by each batch's statistics, as a shipped generator's standing statistics calibrate it. In eval
    mode an untrained one would use its initial running statistics (mean 0, variance 1): a handicap that the same
    network calibrated after a step at a learning rate of nothing no longer has, and that beat it by 3.5x."""
    return net.train()(latent).float().cpu()


def _generate(
    net: torch.nn.Module,
    count: int,
    rng: torch.Generator,
    progress_bar: bool = False,
    sample: Callable[[torch.nn.Module, torch.Tensor], torch.Tensor] = sample_images,
) -> torch.Tensor:
    latent = torch.randn(count, net.arch.latent_dim, generator=rng, device=rng.device)
    chunks = tqdm(latent.split(1024), desc="generating", unit="batch", disable=not progress_bar or count <= 1024)
    return torch.cat([sample(net, chunk) for chunk in chunks])


def _class_histogram(inputs: MetricInputs) -> Figure:
    if inputs.judged_by.task == "channels":
        generated, real, num_modes = stacked_mode_labels(inputs)
        return mode_counts_figure(generated.numpy(), real.numpy(), num_modes)
    if inputs.judged_by.task != "classes":
        return note_figure("No class histogram: the data has no classes (its judge learned rotations).")
    return class_histogram_figure(*class_histograms(inputs))


def known_modes(split: Split) -> KnownModes:
    modes = split.record.modes
    if modes is None:
        raise NoKnownModesError(
            f"{split.record.dataset!r} holds vectors but records no modes to score them against; vector "
            "evaluation needs a synthetic mixture (ring8, grid25) or a source that records its modes"
        )
    return KnownModes(np.asarray(modes.centres, dtype=np.float64), modes.std)


def evaluate_mode_coverage(
    net: torch.nn.Module, train_set: Split, validation_set: Split, params: EvaluationParams, rng: torch.Generator
) -> dict[str, Any]:
    """The 2-D benchmark protocol: modes reached by high-quality samples, and their share."""
    modes = known_modes(train_set)
    generated = _generate(net, params.synthetic_num_samples, rng)
    (train_vectors, _), (val_vectors, val_labels) = _tensors(train_set), _tensors(validation_set)
    inputs = MetricInputs(
        judge=None,
        real_train=train_vectors,
        real_validation=val_vectors,
        validation_labels=val_labels,
        generated=generated,
        scoring=params.scoring(),
        known_modes=modes,
    )
    metrics = {**compute_metrics(list(VECTOR_METRICS), inputs), "num_generated": float(len(generated))}
    log_metrics(metrics)
    covered = f"{metrics['modes_covered']:.0f}/{metrics['num_modes']:.0f} modes"
    title = f"{covered}, {metrics['high_quality_share']:.0%} high quality"
    nearest_mode, _ = nearest_modes(generated.numpy().astype(np.float64), modes)
    real_labels = torch.from_numpy(np.asarray(train_set.labels))
    path_latents = interpolation_latents(
        params.interpolation_rows, params.interpolation_steps, net.arch.latent_dim, rng
    )
    return {
        "metrics": metrics,
        "evaluation_samples": sample_grid_figure(generated, title, modes=modes.centres),
        "class_histogram": class_histogram_figure(
            _shares(torch.from_numpy(nearest_mode), len(modes.centres)), _shares(real_labels, len(modes.centres))
        ),
        "latent_interpolation": sample_grid_figure(
            sample_images(net, path_latents), "Latent interpolation", modes.centres
        ),
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


def version_tags(train_set: Split, judge: TensorFile, params: EvaluationParams) -> dict[str, str]:
    """What a version's metrics can be compared with: the dataset, the judge and the sample count."""
    return {
        "dataset": train_set.record.dataset,
        "judge_fingerprint": judge.metadata["fingerprint"],
        "num_generated": str(_generated_count(train_set, params)),
    }


def rescore_champion(
    metrics: dict[str, float], judge: TensorFile, train_set: Split, validation_set: Split, params: EvaluationParams
) -> dict[str, Any]:
    """Score the champion again when new data or a new judge made its metrics incomparable with ``metrics``.

    The champion's generator gets this run's judge, data and latents; its metrics are logged on this run as
    ``champion.<metric>`` for the promotion gate. Returns the version rescored, or ``{}`` when there is no
    champion, nothing to redo, or the champion cannot be scored here (the gate then refuses, saying why).
    """
    if not params.register_model or "frechet_distance" not in metrics:  # vector data: no judge, no gate
        return {}
    current = version_tags(train_set, judge, params)
    champion = registered_generator(params.model_name(current["dataset"]), CHAMPION)
    if champion is None:
        return {}
    version, tags, generator = champion
    if all(tags.get(tag) == value for tag, value in current.items()):
        return {}
    with parameter_errors("evaluation"):
        device = resolve_device(params.device)
    try:
        net = generator_network(generator).to(device)
    except (KeyError, ValueError, RuntimeError) as err:
        logger.warning("Cannot rebuild champion version %s with this code to rescore it: %s", version, err)
        return {}
    if tuple(net.arch.sample_shape) != train_set.record.sample_shape:
        logger.warning("Champion version %s makes samples of shape %s, not this data's", version, net.arch.sample_shape)
        return {}
    rng = torch.Generator(device=next(net.parameters()).device).manual_seed(params.seed)
    inputs = _metric_inputs(net, judge, train_set, validation_set, params, rng)
    rescored = compute_metrics(image_metrics(inputs.judged_by, RESCORED_METRICS), inputs)
    log_metrics({f"{RESCORED_PREFIX}{key}": value for key, value in rescored.items()})
    logger.info(
        "Rescored champion version %s with this run's judge and data: frechet_distance %.4g",
        version,
        rescored["frechet_distance"],
    )
    return {"version": version, "metrics": rescored}


def register_generator(
    generator: TensorFile,
    judge: TensorFile,
    train_set: Split,
    metrics: dict[str, float],
    champion_rescore: dict[str, Any],
    params: EvaluationParams,
) -> dict[str, Any]:
    """Log the evaluated generator to MLflow as a pyfunc model; register it as its dataset's new challenger.

    Its version tags say what its metrics can be compared with, and which champion this run rescored.
    Taking ``metrics`` orders it after scoring, so only a generator with metrics becomes a challenger.
    """
    tags = version_tags(train_set, judge, params)
    if champion_rescore:
        tags[RESCORED_VERSION_TAG] = champion_rescore["version"]
    name = params.model_name(tags["dataset"]) if params.register_model else None
    return log_generator(generator, name, tags)
