"""Generator quality metrics, by name: in the judge's feature space for images, against known modes for vectors.

Each metric takes a ``MetricInputs`` and returns a flat dict of floats; ``METRICS`` maps a name
to it, and ``IMAGE_METRICS`` and ``VECTOR_METRICS`` name those that apply to each kind of data.
The judge's features and logits of every image set are computed once, on first use, and shared
by all metrics. The metric keys are stable: the MLflow comparison and the promotion gate read
them, and the README documents each one.
"""

import contextlib
import copy
import io
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import torch
from prdc import compute_prdc
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.inception import InceptionScore
from torchmetrics.image.kid import KernelInceptionDistance
from tqdm.auto import tqdm

from gan_pipeline.gan.judge import Judge, channel_labels, rotated, stacked_label
from gan_pipeline.gan.settings import ScoringSettings, SettingError

BATCH_SIZE = 1024
HIGH_QUALITY_STDS = 3.0  # a vector within this many stds of its nearest mode is "high quality" (PacGAN, VEEGAN)


@dataclass(frozen=True)
class JudgeOutputs:
    """The judge's view of an image set: penultimate features and class logits, on the CPU."""

    features: torch.Tensor  # (N, feature_dim); a channel judge's: (N, C * feature_dim), channel after channel
    logits: torch.Tensor  # (N, num_classes); a channel judge's: (N, C, num_classes)

    @property
    def probabilities(self) -> torch.Tensor:
        return self.logits.softmax(dim=-1)

    @property
    def predicted_classes(self) -> torch.Tensor:
        """``(N,)``: the class, or for a channel judge the stacked label its channels' classes make."""
        predicted = self.logits.argmax(dim=-1)
        return predicted if predicted.ndim == 1 else stacked_label(predicted, self.logits.shape[-1])


@torch.no_grad()
def judge_outputs(judge: Judge, images: torch.Tensor, batch_size: int = BATCH_SIZE) -> JudgeOutputs:
    """Features and logits in one pass; chunks go to the judge's device and come back to the CPU.

    A channel judge sees each channel of stacked images on its own; a sample's features are its channels'
    side by side.
    """
    if judge.task == "channels":
        count, channels = images.shape[:2]
        single = _judge_outputs(judge, images.flatten(0, 1).unsqueeze(1), batch_size)
        return JudgeOutputs(single.features.view(count, -1), single.logits.view(count, channels, -1))
    return _judge_outputs(judge, images, batch_size)


def _judge_outputs(judge: Judge, images: torch.Tensor, batch_size: int) -> JudgeOutputs:
    device = next(judge.parameters()).device
    if device.type == "cpu":  # CPU convolutions run about 30 % faster on channels-last weights
        judge = copy.deepcopy(judge).to(memory_format=torch.channels_last)
    judge.eval()
    features, logits = [], []
    for chunk in images.split(batch_size):
        chunk_features = judge.features(chunk.to(device))
        features.append(chunk_features.float().cpu())
        logits.append(judge.classify(chunk_features).float().cpu())
    return JudgeOutputs(torch.cat(features), torch.cat(logits))


@torch.no_grad()
def nearest_neighbours(
    queries: torch.Tensor, references: torch.Tensor, k: int = 1, batch_size: int = BATCH_SIZE
) -> tuple[torch.Tensor, torch.Tensor]:
    """Euclidean pixel distances ``(N, k)`` from each query image to its ``k`` nearest references, and their indices."""
    flat_references = references.flatten(1).float()
    distances, indices = [], []
    for chunk in queries.flatten(1).float().split(batch_size):
        nearest = torch.cdist(chunk, flat_references).topk(k, dim=1, largest=False)
        distances.append(nearest.values)
        indices.append(nearest.indices)
    return torch.cat(distances), torch.cat(indices)


@dataclass(frozen=True)
class KnownModes:
    """The modes of a synthetic mixture: centres ``(K, D)`` and their common standard deviation."""

    centres: np.ndarray
    std: float


@dataclass(frozen=True)
class MetricInputs:
    judge: Judge | None  # images are scored by the judge; vectors against their known modes
    real_train: torch.Tensor  # (N, C, H, W) in [-1, 1], or (N, D) vectors
    real_validation: torch.Tensor
    validation_labels: torch.Tensor
    generated: torch.Tensor
    scoring: ScoringSettings
    more_generated: tuple[torch.Tensor, ...] = ()  # further draws as large as ``generated``, for the Frechet distance
    known_modes: KnownModes | None = None
    inception: nn.Module | None = None  # Inception-v3 features (``inception.InceptionFeatures``), for FID and KID
    untrained: torch.Tensor | None = None  # a draw of the untrained generator: the score a first champion must beat

    @property
    def judged_by(self) -> Judge:
        if self.judge is None:
            raise ValueError("this metric scores images in a judge's feature space, but no judge was given")
        return self.judge

    @cached_property
    def train_outputs(self) -> JudgeOutputs:
        """The first training samples, as many as one draw of generated ones: a real set of the same size
        (hence the same bias) to set beside them, at a draw's cost rather than the whole split's."""
        return judge_outputs(self.judged_by, self.real_train[: len(self.generated)])

    @cached_property
    def validation_outputs(self) -> JudgeOutputs:
        return judge_outputs(self.judged_by, self.real_validation)

    @cached_property
    def generated_outputs(self) -> JudgeOutputs:
        return judge_outputs(self.judged_by, self.generated)

    @cached_property
    def generated_to_train(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Pixel distance of the first ``memorisation_samples`` generated images to their nearest
        training image, and that image's index."""
        distances, indices = nearest_neighbours(self.generated[: self.scoring.memorisation_samples], self.real_train)
        return distances[:, 0], indices[:, 0]


class _Precomputed(nn.Module):
    """Hands torchmetrics features we already computed: its metrics call this as their extractor."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


def frechet_distance_of_features(reference: torch.Tensor, others: list[torch.Tensor]) -> list[float]:
    """FID (torchmetrics) of each set in ``others`` against ``reference``, all ``(N, D)`` judge features.

    The reference statistics are accumulated once and kept across ``reset``.
    """
    metric = FrechetInceptionDistance(feature=_Precomputed(reference.shape[1]), reset_real_features=False)
    metric.update(reference, real=True)
    distances = []
    for other in others:
        metric.update(other, real=False)
        distances.append(float(metric.compute()))
        metric.reset()
    return distances


def frechet_distance(judge: Judge, first: torch.Tensor, second: torch.Tensor) -> float:
    """FID between two image sets, with the judge's penultimate layer as the feature extractor."""
    (distance,) = frechet_distance_of_features(
        judge_outputs(judge, first).features, [judge_outputs(judge, second).features]
    )
    return distance


def inception_score_of_logits(logits: torch.Tensor, splits: int, seed: int) -> tuple[float, float]:
    """Inception score (torchmetrics) with the judge as the classifier: mean and std over ``splits``."""
    metric = InceptionScore(feature=_Precomputed(logits.shape[1]), splits=splits)
    metric.update(logits.double())
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # torchmetrics shuffles with the global generator before splitting
        mean, std = metric.compute()
    return float(mean), float(std)


def judge_accuracy(inputs: MetricInputs) -> dict[str, float]:
    """How well the judge does its own task on the real validation split: its classes, or their rotations."""
    if inputs.judged_by.task == "rotation":
        images, turns = rotated(inputs.real_validation)
        predictions = judge_outputs(inputs.judged_by, images).predicted_classes
        return {"judge_val_accuracy": (predictions == turns).float().mean().item()}
    if inputs.judged_by.task == "channels":  # the share of channels whose class it reads right
        logits = inputs.validation_outputs.logits  # (N, C, classes)
        truth = channel_labels(inputs.validation_labels, logits.shape[-1], logits.shape[1])
        return {"judge_val_accuracy": (logits.argmax(dim=-1) == truth).float().mean().item()}
    predictions = inputs.validation_outputs.predicted_classes
    return {"judge_val_accuracy": (predictions == inputs.validation_labels).float().mean().item()}


def frechet_distances(inputs: MetricInputs) -> dict[str, float]:
    """Generated vs real validation, averaged over the draws, and real train vs real validation as the floor;
    with ``untrained``, that draw's distance too (what an untrained generator scores: the gate's baseline).

    One draw of about 1.4k samples moves the distance by a fifth either way (BENCHMARKS.md); the mean
    over draws of the same size is steadier and keeps the floor's sample count, hence its bias.
    """
    draws = [inputs.generated_outputs.features]
    more = tqdm(inputs.more_generated, desc="judging draws", unit="draw", disable=not inputs.scoring.progress_bar)
    draws += [judge_outputs(inputs.judged_by, images).features for images in more]
    untrained = [] if inputs.untrained is None else [judge_outputs(inputs.judged_by, inputs.untrained).features]
    *distances, floor = frechet_distance_of_features(
        inputs.validation_outputs.features, [*draws, *untrained, inputs.train_outputs.features]
    )
    baseline = {"frechet_distance_untrained": distances.pop()} if untrained else {}
    values = torch.tensor(distances, dtype=torch.float64)
    generated = values.mean().item()
    spread = {"frechet_distance_std": values.std().item()} if len(values) > 1 else {}  # one draw: unknown, not 0
    return {
        "frechet_distance": generated,
        **spread,
        "frechet_distance_real_floor": floor,
        "frechet_distance_ratio": generated / floor if floor > 0 else float("inf"),
        **baseline,
    }


def class_histograms(inputs: MetricInputs) -> tuple[torch.Tensor, torch.Tensor]:
    """Class shares of generated samples (judge's prediction) and of the real validation split (labels)."""
    num_classes = inputs.judged_by.num_classes
    generated = torch.bincount(inputs.generated_outputs.predicted_classes, minlength=num_classes).double()
    real = torch.bincount(inputs.validation_labels, minlength=num_classes).double()
    return generated / generated.sum(), real / real.sum()


def mode_coverage(inputs: MetricInputs) -> dict[str, float]:
    """Classes the judge finds among generated samples, and KL(generated || real) of class shares."""
    p, q = class_histograms(inputs)
    kl = torch.where(p > 0, p * (p / q.clamp_min(1e-12)).log(), torch.zeros_like(p)).sum()
    confident = inputs.generated_outputs.probabilities.max(dim=1).values >= inputs.scoring.confidence_threshold
    return {
        "classes_covered": float((p > 0).sum()),
        "num_classes": float(inputs.judged_by.num_classes),
        "class_kl_divergence": kl.item(),
        "confident_share": confident.double().mean().item(),
    }


def mode_kl(modes: np.ndarray | torch.Tensor, num_modes: int) -> float:
    """KL(share of samples per mode || uniform): 0 when every mode is hit equally often (PacGAN's reverse KL)."""
    shares = np.bincount(np.asarray(modes), minlength=num_modes) / len(modes)
    hit = shares > 0
    return float((shares[hit] * np.log(shares[hit] * num_modes)).sum())


def stacked_mode_labels(inputs: MetricInputs) -> tuple[torch.Tensor, torch.Tensor, int]:
    """The mode the channel judge reads in each generated sample and in as many real training samples, and
    the number of modes."""
    if inputs.judged_by.task != "channels":
        raise ValueError("stacked modes are read by a judge of each channel's class (task 'channels')")
    count = min(len(inputs.generated), len(inputs.real_train))
    num_modes = inputs.judged_by.num_classes ** inputs.generated.shape[1]
    generated = inputs.generated_outputs.predicted_classes[:count]
    return generated, inputs.train_outputs.predicted_classes, num_modes


def stacked_modes(inputs: MetricInputs) -> dict[str, float]:
    """Stacked MNIST's protocol (Metz et al. 2017, PacGAN): a sample's mode is what the channel judge reads in
    each channel; modes covered and KL(mode histogram || uniform) of the generated samples, and of as many
    real training samples (their floor: what the judge's own errors and the sample count leave).

    ``channel_mode_kl`` sums each channel's KL(class shares || uniform): the part of ``mode_kl`` that uneven
    digits explain (the rest comes from channels that depend on each other).
    """
    generated, real, num_modes = stacked_mode_labels(inputs)
    per_channel = inputs.generated_outputs.logits.argmax(dim=-1)[: len(generated)]
    num_classes = inputs.judged_by.num_classes
    return {
        "modes_covered": float(len(generated.unique())),
        "num_modes": float(num_modes),
        "mode_kl": mode_kl(generated, num_modes),
        "channel_mode_kl": sum(mode_kl(channel, num_classes) for channel in per_channel.T),
        "modes_covered_real": float(len(real.unique())),
        "mode_kl_real": mode_kl(real, num_modes),
    }


def precision_recall_density_coverage(inputs: MetricInputs) -> dict[str, float]:
    """Kynkaanniemi et al. (2019) precision/recall, Naeem et al. (2020) density/coverage, by the ``prdc`` package.

    Real validation features against as many generated ones, since the k-NN radii depend on set size, and at
    most ``precision_recall_samples`` of each: prdc holds three square distance matrices of that side.
    """
    count = min(len(inputs.real_validation), len(inputs.generated), inputs.scoring.precision_recall_samples)
    nearest_k = inputs.scoring.nearest_k
    if count <= nearest_k + 1:
        raise SettingError(
            "nearest_k",
            f"precision/recall need more than nearest_k + 1 = {nearest_k + 1} samples per set, got {count}; "
            "lower it or generate more samples",
        )
    with contextlib.redirect_stdout(io.StringIO()):  # prdc prints the set sizes
        scores = compute_prdc(  # float64: scikit-learn's float32 distances take a slower, upcasting path
            real_features=inputs.validation_outputs.features[:count].double().numpy(),
            fake_features=inputs.generated_outputs.features[:count].double().numpy(),
            nearest_k=nearest_k,
        )
    return {name: float(scores[name]) for name in ("precision", "recall", "density", "coverage")}


def judge_inception_score(inputs: MetricInputs) -> dict[str, float]:
    """Inception score of generated samples with the judge as classifier; the real validation split for scale."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*will save all extracted features", category=UserWarning)
        splits, seed = inputs.scoring.inception_score_splits, inputs.scoring.seed
        mean, std = inception_score_of_logits(inputs.generated_outputs.logits, splits, seed)
        real_mean, _ = inception_score_of_logits(inputs.validation_outputs.logits, splits, seed)
    return {"judge_inception_score": mean, "judge_inception_score_std": std, "judge_inception_score_real": real_mean}


def memorisation(inputs: MetricInputs) -> dict[str, float]:
    """Median pixel distance to the nearest training image: generated samples vs held-out real ones.

    Held-out real images show how close unseen data sits to the training set; a generator that
    copies its training data sits much closer (ratio well below 1). A median needs no more than
    ``memorisation_samples`` images of each kind.
    """
    generated, _ = inputs.generated_to_train
    held_out_images = inputs.real_validation[: inputs.scoring.memorisation_samples]
    held_out = nearest_neighbours(held_out_images, inputs.real_train)[0][:, 0]
    ratio = generated.median() / held_out.median().clamp_min(1e-12)
    return {"nearest_train_distance": generated.median().item(), "nearest_train_distance_ratio": ratio.item()}


@torch.no_grad()
def network_features(network: nn.Module, images: torch.Tensor, label: str, progress_bar: bool) -> torch.Tensor:
    """``network(images)`` in batches of 32 on the network's device, back on the CPU."""
    device = next(network.parameters()).device
    batches = tqdm(images.split(32), desc=label, unit="batch", disable=not progress_bar)
    return torch.cat([network(batch.to(device)).float().cpu() for batch in batches])


def kernel_inception_distance(real: torch.Tensor, fake: torch.Tensor, seed: int) -> tuple[float, float]:
    """KID (Binkowski et al. 2018, torchmetrics): mean and std of the unbiased MMD over 100 random subsets."""
    size = min(1000, len(real), len(fake))
    with warnings.catch_warnings():  # that it keeps every feature: these are already in memory
        warnings.simplefilter("ignore", UserWarning)
        metric = KernelInceptionDistance(feature=_Precomputed(real.shape[1]), subsets=100, subset_size=size)
    metric.update(real, real=True)
    metric.update(fake, real=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # torchmetrics draws the subsets with the global generator
        mean, std = metric.compute()
    return float(mean), float(std)


def inception_distances(inputs: MetricInputs) -> dict[str, float]:
    """The standard metrics, with Inception-v3 features: FID (Heusel et al. 2017) and KID of the generated
    samples (the first draw) against the real training split, as papers compute them (with their sample counts)."""
    if inputs.inception is None:
        raise ValueError("inception scores images with Inception-v3, but no network was given")
    progress = inputs.scoring.progress_bar
    real = network_features(inputs.inception, inputs.real_train, "Inception: real images", progress)
    fake = network_features(inputs.inception, inputs.generated, "Inception: generated images", progress)
    (fid,) = frechet_distance_of_features(real, [fake])
    kid, kid_std = kernel_inception_distance(real, fake, inputs.scoring.seed)
    return {"inception_fid": fid, "inception_kid": kid, "inception_kid_std": kid_std}


def nearest_modes(samples: np.ndarray, modes: KnownModes) -> tuple[np.ndarray, np.ndarray]:
    """Each sample's nearest mode ``(N,)`` and its distance to it."""
    distances = np.linalg.norm(samples[:, None, :] - modes.centres[None, :, :], axis=2)  # (N, K)
    nearest = distances.argmin(axis=1)
    return nearest, distances[np.arange(len(samples)), nearest]


def mode_collapse_metrics(samples: np.ndarray, modes: KnownModes) -> dict[str, float]:
    """Modes reached, share of high-quality samples (within 3 std of their nearest centre) and PacGAN's
    reverse KL: every sample assigned to its nearest mode, KL(mode shares || uniform).

    A mode counts as covered when at least one high-quality sample has it as nearest centre.
    """
    samples = np.asarray(samples, dtype=np.float64)
    dims = modes.centres.shape[1]
    if samples.ndim != 2 or samples.shape[1] != dims or len(samples) == 0:
        raise ValueError(f"samples must be a non-empty (N, {dims}) array, got shape {samples.shape}")
    nearest, distance = nearest_modes(samples, modes)
    high_quality = distance <= HIGH_QUALITY_STDS * modes.std
    return {
        "modes_covered": float(len(np.unique(nearest[high_quality]))),
        "num_modes": float(len(modes.centres)),
        "high_quality_share": float(high_quality.mean()),
        "mode_kl": mode_kl(nearest, len(modes.centres)),
    }


def mode_collapse(inputs: MetricInputs) -> dict[str, float]:
    """The 2-D benchmark protocol (PacGAN, VEEGAN): modes reached by high-quality samples, and their share."""
    if inputs.known_modes is None:
        raise ValueError("mode_collapse scores vectors against known modes, but none were given")
    return mode_collapse_metrics(inputs.generated.numpy(), inputs.known_modes)


METRICS: dict[str, Callable[[MetricInputs], dict[str, float]]] = {
    "judge_accuracy": judge_accuracy,
    "frechet_distance": frechet_distances,
    "mode_coverage": mode_coverage,
    "precision_recall_density_coverage": precision_recall_density_coverage,
    "judge_inception_score": judge_inception_score,
    "memorisation": memorisation,
    "stacked_modes": stacked_modes,
    "mode_collapse": mode_collapse,
    "inception": inception_distances,  # on request (evaluation.inception): it needs Inception-v3 and its weights
}
IMAGE_METRICS = (
    "judge_accuracy",
    "frechet_distance",
    "mode_coverage",
    "precision_recall_density_coverage",
    "judge_inception_score",
    "memorisation",
    "stacked_modes",
)
CLASS_METRICS = ("mode_coverage", "judge_inception_score")  # need a judge of the data's own classes
CHANNEL_METRICS = ("stacked_modes",)  # need a judge of each channel's class (stacked data)
VECTOR_METRICS = ("mode_collapse",)
REQUESTED_METRICS = ("inception",)  # images, only when asked for (evaluation.inception): slow, and needs weights


def image_metrics(judge: Judge, names: tuple[str, ...] = IMAGE_METRICS) -> list[str]:
    """Those of ``names`` this judge can compute: the class metrics need a judge of the data's classes, the
    stacked modes one of each channel's."""
    needs = {**dict.fromkeys(CLASS_METRICS, "classes"), **dict.fromkeys(CHANNEL_METRICS, "channels")}
    return [name for name in names if needs.get(name, judge.task) == judge.task]


def compute_metrics(names: list[str], inputs: MetricInputs) -> dict[str, float]:
    results: dict[str, float] = {}
    for name in names:
        results.update(METRICS[name](inputs))
    return results
