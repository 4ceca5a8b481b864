"""``training``: the networks, the adversarial loop, the hardware, checkpoints and reporting."""

from dataclasses import fields
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, NonNegativeFloat, PositiveInt, field_validator

from gan_pipeline.config.base import Params, all_of, known_device, one_of
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
    packing: PositiveInt
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
    ema_warmup: float = Field(ge=0, le=1)
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
    _known_preset = field_validator("preset")(one_of("preset", ["auto", *PRESETS]))
    _known_loss = field_validator("loss")(one_of("loss", sorted(LOSSES)))
    _known_augmentations = field_validator("diff_augment")(all_of("augmentations", AUGMENTATIONS))
    _known_fields = field_validator("architecture")(all_of("architecture fields", architecture_fields()))

    @field_validator("betas")
    @classmethod
    def _betas_in_range(cls, betas: tuple[float, float]) -> tuple[float, float]:
        if not all(0 <= beta < 1 for beta in betas):
            raise ValueError(f"Adam betas must be in [0, 1), got {list(betas)}")
        return betas

    def settings(self) -> TrainingSettings:
        """What the core training loop is told: the keys it shares with these parameters, and the rest resolved."""
        shared = {field.name for field in fields(TrainingSettings)} - {"fakes_per_step", "speed", "health"}
        return TrainingSettings(
            **self.model_dump(include=shared),
            fakes_per_step=self.generated_batch_size or self.batch_size,
            speed=self.speed.options(),
            health=HealthSettings(**self.health.model_dump()),
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
