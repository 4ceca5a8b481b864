"""What the core is told: plain settings, complete and already validated by whoever calls it.

They carry no defaults: the project builds them from its parameters (``gan_pipeline.config``),
a script or a test spells every value out. A problem that only shows against the data (a batch
larger than the data, augmentations on vectors) is a ``SettingError`` naming the setting, which
the caller maps to its own name for it.
"""

from dataclasses import dataclass
from typing import Literal

AutoOrBool = Literal["auto"] | bool


class SettingError(ValueError):
    """A setting that cannot work as given; ``setting`` is its name here (a field or argument)."""

    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(f"{setting}: {problem}")
        self.setting, self.problem = setting, problem


@dataclass(frozen=True)
class SpeedOptions:
    """GPU speed options; ``auto`` turns each on for CUDA and off elsewhere (``runtime.SpeedSettings``)."""

    precision: Literal["auto", "bf16", "fp32"]
    channels_last: AutoOrBool
    compile: AutoOrBool
    cudnn_benchmark: AutoOrBool


@dataclass(frozen=True)
class HealthSettings:
    """When the loop warns that D wins outright: D(G(z)) below ``discriminator_win_score`` for that many steps."""

    discriminator_win_score: float
    discriminator_win_steps: int


@dataclass(frozen=True)
class TrainingSettings:
    """How the adversarial loop trains; networks, data and checkpoint storage come in separately."""

    loss: str  # a name of losses.LOSSES
    gradient_penalty_weight: float  # wgan_gp only
    r1_gamma: float  # 0: no R1 penalty
    discriminator_steps: int  # D updates per G update
    packing: int  # samples D scores together (PacGAN; 1: one at a time); D must be built for it
    diff_augment: tuple[str, ...]  # names of augment.AUGMENTATIONS, applied to what D sees
    epochs: int
    batch_size: int  # real samples per D update, per process
    fakes_per_step: int  # samples G generates for each D update and for its own
    generator_lr: float
    discriminator_lr: float
    lr_decay_start: float  # fraction of the epochs after which both rates fall linearly
    betas: tuple[float, float]
    ema_decay: float  # 0: ship G itself rather than an average of its weights
    ema_warmup: float  # the average's half-life is at most this fraction of the steps so far (0: none)
    standing_statistics_batches: int  # 0: keep BatchNorm's running averages
    seed: int
    speed: SpeedOptions
    health: HealthSettings
    log_every_steps: int
    sample_every_epochs: int
    num_fixed_samples: int
    progress_bar: bool


@dataclass(frozen=True)
class JudgeSettings:
    """How the judge is fitted on real data, and on which task: their classes, their rotations, or (stacked
    data) the class of each channel."""

    task: Literal["classes", "rotation", "channels"]
    epochs: int
    batch_size: int
    learning_rate: float
    feature_dim: int
    seed: int
    progress_bar: bool


@dataclass(frozen=True)
class ScoringSettings:
    """How generated samples are scored (``metrics.MetricInputs``)."""

    confidence_threshold: float  # a sample is confidently classified above this judge probability
    nearest_k: int  # k of the k-NN balls of precision, recall, density and coverage
    precision_recall_samples: int  # at most this many samples of each set for precision, recall, density, coverage
    inception_score_splits: int
    memorisation_samples: int  # generated and held-out samples whose nearest training sample is searched
    seed: int  # of the inception score's random split
    progress_bar: bool  # over the judge's passes of the generated draws
