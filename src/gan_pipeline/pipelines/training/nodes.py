"""Training: build networks from the preset, run the core loop, package the results."""

from typing import Any

import numpy as np
import pandas as pd

from gan_pipeline.config import TrainingParams, parse_params
from gan_pipeline.gan.checkpoints import CheckpointStore, data_fingerprint
from gan_pipeline.gan.distributed import distributed_training
from gan_pipeline.gan.networks import build_networks, preset_name, resolve_architecture, with_spectral_norm
from gan_pipeline.gan.runtime import SpeedSettings, resident_on, seeded_generator
from gan_pipeline.gan.serialization import architecture_metadata, module_to_tensors
from gan_pipeline.gan.training import Checkpointing, train_gan
from gan_pipeline.plots import loss_curves_figure, training_progress_figure
from gan_pipeline.tracking import (
    StepMetricsLogger,
    active_run_id,
    active_run_record,
    set_tags,
    system_metrics_logged,
    tag_alert,
)


def checkpointing_for(config: TrainingParams, samples: np.ndarray) -> Checkpointing | None:
    """Where this run checkpoints, tagged with its data and MLflow run; None when checkpoints are off."""
    if config.checkpoint.every_epochs == 0:
        return None
    return Checkpointing(
        store=CheckpointStore(config.checkpoint.directory, config.checkpoint.keep),
        every_epochs=config.checkpoint.every_epochs,
        data_fingerprint=data_fingerprint(samples),
        tracking_run_id=active_run_id(),
    )


def train_model(train_set: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """Train G and D (on every torchrun process); return weights, the per-step loss history and figures."""
    config = parse_params(TrainingParams, "training", params)
    with distributed_training(config.device, config.distributed_backend) as (distributed, device):
        real = resident_on(train_set["samples"], device)
        arch = resolve_architecture(config.preset, tuple(real.shape[1:]), config.architecture)
        rng = seeded_generator(config.seed, device)
        generator, discriminator = build_networks(arch)
        if config.spectral_norm:
            with_spectral_norm(discriminator)
        speed = SpeedSettings.resolve(config.speed, device)
        set_tags(
            {
                "architecture": preset_name(config.preset, tuple(real.shape[1:])),
                "device": str(device),
                "loss": config.loss,
                "dataset": train_set.get("__metadata__", {}).get("dataset"),
                "processes": distributed.world_size,
                **speed.describe(),
            }
        )
        with system_metrics_logged(config.system_metrics_interval_s), StepMetricsLogger() as log_step:
            result = train_gan(
                generator.to(device),
                discriminator.to(device),
                real,
                config,
                rng,
                on_step=log_step,
                on_alert=tag_alert,
                checkpointing=checkpointing_for(config, train_set["samples"]),
                distributed=distributed,
                speed=speed,
            )
    set_tags({"resumed_from_step": result.resumed_from_step})

    history = pd.DataFrame(result.history)
    arch_json = architecture_metadata(arch)
    return {
        "generator": module_to_tensors(result.generator, architecture=arch_json, ema=config.ema_decay > 0),
        "discriminator": module_to_tensors(discriminator, architecture=arch_json, spectral_norm=config.spectral_norm),
        "loss_history": history,
        "loss_curves": loss_curves_figure(history),
        "training_progress": training_progress_figure(result.snapshots),
        "training_run": active_run_record(),
    }
