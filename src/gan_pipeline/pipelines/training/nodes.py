"""Training: build networks from the preset, run the core loop, package the results."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pandas as pd

from gan_pipeline.config.base import parameter_errors
from gan_pipeline.config.training import TrainingParams, trajectory_key
from gan_pipeline.errors import UserError
from gan_pipeline.gan.checkpoints import CheckpointError, CheckpointMismatchError, data_fingerprint
from gan_pipeline.gan.distributed import distributed_training
from gan_pipeline.gan.networks import build_networks, with_spectral_norm
from gan_pipeline.gan.presets import preset_name, resolve_architecture
from gan_pipeline.gan.runtime import SpeedSettings, resident_on, seeded_generator
from gan_pipeline.gan.serialization import architecture_metadata, module_to_tensors
from gan_pipeline.gan.training import Checkpointing, train_gan
from gan_pipeline.plots import loss_curves_figure, training_progress_figure
from gan_pipeline.splits import Split
from gan_pipeline.tracking import (
    StepMetricsLogger,
    active_run_id,
    active_run_record,
    set_tags,
    system_metrics_logged,
    tag_alert,
)


class CheckpointRefused(UserError):
    """The checkpoint directory holds a checkpoint this run cannot continue."""


def checkpointing_for(params: TrainingParams, split: Split, world_size: int, device_type: str) -> Checkpointing | None:
    """Where this run checkpoints, tagged with its data and MLflow run; None when checkpoints are off."""
    if params.checkpoint.every_epochs == 0:
        return None
    return Checkpointing(
        store=params.checkpoint.store(),
        every_epochs=params.checkpoint.every_epochs,
        data_fingerprint=data_fingerprint(split.samples),
        trajectory=params.trajectory(world_size, device_type),
        resume=params.resume == "auto",
        tracking_run_id=active_run_id(),
    )


@contextmanager
def checkpoint_refusals() -> Iterator[None]:
    """A checkpoint the core will not continue, reported with the parameters that differ and the way out."""
    try:
        yield
    except CheckpointMismatchError as err:
        raise CheckpointRefused(
            f"training.resume=auto {err.describe(trajectory_key)}\n"
            "To start over instead: kedro run --params training.resume=never"
        ) from err
    except CheckpointError as err:
        raise CheckpointRefused(f"{err}\nTo start over instead: kedro run --params training.resume=never") from err


def train_model(train_set: Split, params: TrainingParams) -> dict[str, Any]:
    """Train G and D (on every torchrun process); return weights, the per-step loss history and figures."""
    settings = params.settings()
    with (
        parameter_errors("training"),
        checkpoint_refusals(),
        distributed_training(params.device, params.distributed_backend) as (distributed, device),
    ):
        real = resident_on(train_set.samples, device)
        arch = resolve_architecture(params.preset, train_set.record.sample_shape, params.architecture)
        rng = seeded_generator(settings.seed, device)
        generator, discriminator = build_networks(arch, settings.packing)
        if params.spectral_norm:
            with_spectral_norm(discriminator)
        speed = SpeedSettings.resolve(settings.speed, device)
        set_tags(
            {
                "architecture": preset_name(params.preset, train_set.record.sample_shape),
                "device": str(device),
                "loss": settings.loss,
                "dataset": train_set.record.dataset,
                "processes": distributed.world_size,
                **speed.describe(),
            }
        )
        with system_metrics_logged(params.system_metrics_interval_s), StepMetricsLogger() as log_step:
            result = train_gan(
                generator.to(device),
                discriminator.to(device),
                real,
                settings,
                rng,
                on_step=log_step,
                on_alert=tag_alert,
                checkpointing=checkpointing_for(params, train_set, distributed.world_size, device.type),
                distributed=distributed,
                speed=speed,
            )
    set_tags({"resumed_from_step": result.resumed_from_step})

    history = pd.DataFrame(result.history)
    arch_json = architecture_metadata(arch)
    return {
        "generator": module_to_tensors(result.generator, architecture=arch_json, ema=settings.ema_decay > 0),
        "discriminator": module_to_tensors(
            discriminator, architecture=arch_json, spectral_norm=params.spectral_norm, packing=params.packing
        ),
        "loss_history": history,
        "loss_curves": loss_curves_figure(history),
        "training_progress": training_progress_figure(result.snapshots),
        "training_run": active_run_record(),
    }
