"""Training: build networks from the preset, run the core loop, package the results."""

from typing import Any

import pandas as pd
import torch

from gan_pipeline.config import TrainingParams, parse_params
from gan_pipeline.gan.networks import build_networks, preset_name, resolve_architecture
from gan_pipeline.gan.runtime import resolve_device, seeded_generator
from gan_pipeline.gan.serialization import architecture_metadata, module_to_tensors
from gan_pipeline.gan.training import train_gan
from gan_pipeline.plots import loss_curves_figure, training_progress_figure
from gan_pipeline.tracking import active_run_record, log_step_metrics, set_tags, system_metrics_logged


def train_model(train_set: dict[str, Any], params: dict[str, Any]) -> dict[str, Any]:
    """Train G and D; return weights, the per-step loss history, figures and the MLflow run that trained them."""
    config = parse_params(TrainingParams, "training", params)
    device = resolve_device(config.device)
    real = torch.from_numpy(train_set["samples"]).to(device)
    arch = resolve_architecture(config.preset, tuple(real.shape[1:]), config.architecture)
    rng = seeded_generator(config.seed, device)
    generator, discriminator = (net.to(device) for net in build_networks(arch))
    preset = preset_name(config.preset, tuple(real.shape[1:]))
    dataset = train_set.get("__metadata__", {}).get("dataset")
    set_tags({"architecture": preset, "device": str(device), "loss": config.loss, "dataset": dataset})

    with system_metrics_logged(config.system_metrics_interval_s):
        result = train_gan(generator, discriminator, real, config, rng, on_step=log_step_metrics)

    history = pd.DataFrame(result.history)
    arch_json = architecture_metadata(arch)
    return {
        "generator": module_to_tensors(result.generator, architecture=arch_json, ema=config.ema_decay > 0),
        "discriminator": module_to_tensors(discriminator, architecture=arch_json),
        "loss_history": history,
        "loss_curves": loss_curves_figure(history),
        "training_progress": training_progress_figure(result.snapshots),
        "training_run": active_run_record(),
    }
