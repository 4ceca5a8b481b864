"""``training``: the networks, the adversarial loop, the hardware, checkpoints and reporting."""

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, NonNegativeFloat, PositiveInt, field_validator

from gan_pipeline.config.base import Params, known_device
from gan_pipeline.gan.augment import AUGMENTATIONS
from gan_pipeline.gan.checkpoints import CheckpointStore
from gan_pipeline.gan.losses import LOSSES
from gan_pipeline.gan.presets import PRESETS, architecture_fields
from gan_pipeline.gan.settings import AutoOrBool, HealthSettings, SpeedOptions, TrainingSettings

# Keys that do not change what is trained: a run may resume from a checkpoint with other values for them.
NON_TRAJECTORY_KEYS = {"device", "speed", "resume", "checkpoint", "health", "progress_bar"}


class SpeedParams(Params):
    precision: Literal["auto", "bf16", "fp32"]
    channels_last: AutoOrBool
    compile: AutoOrBool
    cudnn_benchmark: AutoOrBool

    def options(self) -> SpeedOptions:
        return SpeedOptions(**self.model_dump())


class CheckpointParams(Params):
    directory: str
    every_epochs: int = Field(ge=0)
    keep: PositiveInt

    def store(self, project_path: Path = Path()) -> CheckpointStore:
        """The checkpoints of the training run, under ``project_path`` when the directory is relative."""
        return CheckpointStore(project_path / self.directory, self.keep)


class HealthParams(Params):
    discriminator_win_score: float = Field(gt=0, lt=1)
    discriminator_win_steps: PositiveInt


class TrainingParams(Params):
    preset: str
    architecture: dict[str, Any]
    loss: str
    gradient_penalty_weight: float = Field(gt=0)
    r1_gamma: float = Field(ge=0)
    spectral_norm: bool
    discriminator_steps: PositiveInt
    diff_augment: tuple[str, ...]
    epochs: PositiveInt
    batch_size: PositiveInt
    # None: as many as batch_size. BatchNorm in G needs at least two.
    generated_batch_size: int | None = Field(ge=2)
    generator_lr: float = Field(gt=0)
    discriminator_lr: float = Field(gt=0)
    lr_decay_start: float = Field(ge=0, le=1)
    betas: tuple[float, float]
    ema_decay: float = Field(ge=0, lt=1)
    standing_statistics_batches: int = Field(ge=0)
    seed: int
    device: str
    distributed_backend: Literal["auto", "nccl", "gloo"]
    speed: SpeedParams
    resume: Literal["auto", "never"]
    checkpoint: CheckpointParams
    health: HealthParams
    log_every_steps: PositiveInt
    sample_every_epochs: PositiveInt
    num_fixed_samples: PositiveInt
    progress_bar: bool
    system_metrics_interval_s: NonNegativeFloat

    _device_name = field_validator("device")(known_device)

    @field_validator("preset")
    @classmethod
    def _known_preset(cls, name: str) -> str:
        if name != "auto" and name not in PRESETS:
            raise ValueError(f"unknown preset {name!r}; allowed: {['auto', *PRESETS]}")
        return name

    @field_validator("loss")
    @classmethod
    def _known_loss(cls, name: str) -> str:
        if name not in LOSSES:
            raise ValueError(f"unknown loss {name!r}; allowed: {sorted(LOSSES)}")
        return name

    @field_validator("diff_augment")
    @classmethod
    def _known_augmentations(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [name for name in names if name not in AUGMENTATIONS]
        if unknown:
            raise ValueError(f"unknown augmentations {unknown}; allowed: {sorted(AUGMENTATIONS)}")
        return names

    @field_validator("architecture")
    @classmethod
    def _known_fields(cls, overrides: dict[str, Any]) -> dict[str, Any]:
        allowed = architecture_fields()
        unknown = set(overrides) - allowed
        if unknown:
            raise ValueError(f"unknown architecture fields {sorted(unknown)}; allowed: {sorted(allowed)}")
        return overrides

    @field_validator("betas")
    @classmethod
    def _betas_in_range(cls, betas: tuple[float, float]) -> tuple[float, float]:
        if not all(0 <= beta < 1 for beta in betas):
            raise ValueError(f"Adam betas must be in [0, 1), got {list(betas)}")
        return betas

    def settings(self) -> TrainingSettings:
        """What the core training loop is told."""
        return TrainingSettings(
            loss=self.loss,
            gradient_penalty_weight=self.gradient_penalty_weight,
            r1_gamma=self.r1_gamma,
            discriminator_steps=self.discriminator_steps,
            diff_augment=self.diff_augment,
            epochs=self.epochs,
            batch_size=self.batch_size,
            fakes_per_step=self.generated_batch_size or self.batch_size,
            generator_lr=self.generator_lr,
            discriminator_lr=self.discriminator_lr,
            lr_decay_start=self.lr_decay_start,
            betas=self.betas,
            ema_decay=self.ema_decay,
            standing_statistics_batches=self.standing_statistics_batches,
            seed=self.seed,
            speed=self.speed.options(),
            health=HealthSettings(**self.health.model_dump()),
            log_every_steps=self.log_every_steps,
            sample_every_epochs=self.sample_every_epochs,
            num_fixed_samples=self.num_fixed_samples,
            progress_bar=self.progress_bar,
        )

    def trajectory(self, world_size: int, device_type: str) -> dict[str, Any]:
        """What must match for a checkpoint to be continued: the parameters that shape training, the
        number of processes (it sets the shards) and the kind of device (its RNG states differ)."""
        return {
            **self.model_dump(mode="json", exclude=NON_TRAJECTORY_KEYS),
            "world_size": world_size,
            "device_type": device_type,
        }


def trajectory_key(setting: str) -> str:
    """How a checkpoint's trajectory entry is set: a ``training`` key, or how the run was launched."""
    launched = {"world_size": "processes (torchrun --nproc-per-node x nodes)", "device_type": "device type"}
    return launched.get(setting, f"training.{setting}")
