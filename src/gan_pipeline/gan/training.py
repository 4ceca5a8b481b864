"""The GAN training loop: order of updates, fixed-noise snapshots, per-step history.

Networks and losses come in from outside; the loop never names a concrete network.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm.auto import tqdm

from gan_pipeline.config import TrainingParams
from gan_pipeline.gan.losses import LOSSES

StepCallback = Callable[[int, dict[str, float]], None]


@dataclass
class TrainingResult:
    generator: nn.Module  # the one to evaluate and ship: the EMA average when enabled
    history: list[dict[str, float]] = field(default_factory=list)
    snapshots: list[tuple[int, torch.Tensor]] = field(default_factory=list)  # (epoch, images)


def exponential_moving_average(generator: nn.Module, decay: float) -> AveragedModel | None:
    """An EMA copy of G's weights and BatchNorm statistics, or None when ``decay`` is 0."""
    if decay == 0:
        return None
    return AveragedModel(generator, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def sample_images(generator: nn.Module, latent: torch.Tensor) -> torch.Tensor:
    """Generate without touching BatchNorm statistics or autograd."""
    was_training = generator.training
    generator.eval()
    with torch.no_grad():
        images = generator(latent)
    generator.train(was_training)
    return images.float().cpu()


def train_gan(
    generator: nn.Module,
    discriminator: nn.Module,
    real: torch.Tensor,
    config: TrainingParams,
    rng: torch.Generator,
    on_step: StepCallback | None = None,
) -> TrainingResult:
    """Train ``generator`` and ``discriminator`` on ``real`` (N, C, H, W) in [-1, 1].

    ``real``, both networks and ``rng`` must already be on the training device; ``on_step`` is
    called with the global step and its metrics every ``log_every_steps`` steps.
    """
    device = real.device
    num_samples = real.shape[0]
    if config.batch_size > num_samples:
        raise ValueError(
            f"training.batch_size ({config.batch_size}) is larger than the training split "
            f"({num_samples} samples); lower training.batch_size"
        )
    steps_per_epoch = num_samples // config.batch_size  # drop the last partial batch
    latent_dim = generator.arch.latent_dim
    loss = LOSSES[config.loss]()
    opt_g = torch.optim.Adam(generator.parameters(), config.generator_lr, betas=config.betas)
    opt_d = torch.optim.Adam(discriminator.parameters(), config.discriminator_lr, betas=config.betas)
    fixed_latent = torch.randn(config.num_fixed_samples, latent_dim, generator=rng, device=device)

    ema = exponential_moving_average(generator, config.ema_decay)
    shipped = generator if ema is None else ema.module
    result = TrainingResult(generator=shipped)
    total_steps = config.epochs * steps_per_epoch
    progress = tqdm(total=total_steps, desc="training", unit="step", disable=not config.progress_bar)
    started, step = time.perf_counter(), 0
    for epoch in range(1, config.epochs + 1):
        order = torch.randperm(num_samples, generator=rng, device=device)
        for batch_index in range(steps_per_epoch):
            batch = real[order[batch_index * config.batch_size : (batch_index + 1) * config.batch_size]]
            latent = torch.randn(config.batch_size, latent_dim, generator=rng, device=device)
            fake = generator(latent)

            # Discriminator: maximise log D(x) + log(1 - D(G(z))); G is held fixed by detach().
            scores = loss.discriminator_loss(discriminator, batch, fake.detach())
            opt_d.zero_grad(set_to_none=True)
            scores.loss.backward()
            opt_d.step()

            # Generator: maximise log D(G(z)) (non-saturating), through the updated D.
            g_loss = loss.generator_loss(discriminator, fake)
            opt_g.zero_grad(set_to_none=True)
            g_loss.backward()
            opt_g.step()
            if ema is not None:
                ema.update_parameters(generator)

            step += 1
            if step % config.log_every_steps == 0 or step == total_steps:
                row = {
                    "epoch": epoch,
                    "step": step,
                    "d_loss": scores.loss.item(),
                    "g_loss": g_loss.item(),
                    "d_real": torch.sigmoid(scores.real_logits).mean().item(),
                    "d_fake": torch.sigmoid(scores.fake_logits).mean().item(),
                    "images_per_second": step * config.batch_size / (time.perf_counter() - started),
                }
                result.history.append(row)
                if on_step is not None:
                    on_step(step, row)
                progress.set_postfix(
                    epoch=epoch,
                    d_loss=f"{row['d_loss']:.3f}",
                    g_loss=f"{row['g_loss']:.3f}",
                    img_s=f"{row['images_per_second']:.0f}",
                )
            progress.update()
        if epoch % config.sample_every_epochs == 0 or epoch == config.epochs:
            result.snapshots.append((epoch, sample_images(shipped, fixed_latent)))
    progress.close()
    return result
