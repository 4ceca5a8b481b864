"""The GAN training loop: order of updates, speed options, checkpoints, health checks, history.

Networks and losses come in from outside; the loop never names a concrete network. The same
loop runs on one CPU, one GPU, or many processes under torchrun (DDP): each process trains on
its own shard of every epoch's shuffled order, gradients are averaged in backward, metrics are
averaged at logging time, and only the main process writes checkpoints and reports.
"""

import copy
import logging
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from itertools import chain
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from gan_pipeline.gan.augment import diff_augment
from gan_pipeline.gan.checkpoints import (
    CheckpointError,
    CheckpointRecord,
    CheckpointStore,
    module_tensors,
    network_settings,
    optimizer_tensors,
    restore_module,
    restore_optimizer,
)
from gan_pipeline.gan.distributed import SINGLE_PROCESS, DistributedContext
from gan_pipeline.gan.losses import GANLoss, build_loss, r1_penalty
from gan_pipeline.gan.runtime import SpeedSettings, cudnn_autotuning
from gan_pipeline.gan.settings import HealthSettings, SettingError, TrainingSettings

logger = logging.getLogger(__name__)

StepCallback = Callable[[int, dict[str, float]], None]
AlertCallback = Callable[[str, str], None]  # (short key, message) for warnings a tracker should keep
METRIC_NAMES = ("d_loss", "g_loss", "d_real", "d_fake")


class TrainingDivergedError(RuntimeError):
    """A loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class TrainingResult:
    generator: nn.Module  # the one to evaluate and ship: the EMA average when enabled, with standing statistics
    history: list[dict[str, float]] = field(default_factory=list)
    snapshots: list[tuple[int, torch.Tensor]] = field(default_factory=list)  # (epoch, images)
    resumed_from_step: int = 0  # 0: trained from scratch


@dataclass(frozen=True)
class Checkpointing:
    """Where and how often the loop checkpoints, and whether it continues an unfinished checkpoint.

    ``trajectory`` is what must match for a checkpoint to be continued (the caller's settings that
    shape training); ``tracking_run_id`` is stored for the caller to resume into, and a finished checkpoint
    of that same tracking run is taken up (the run stopped in a later stage: nothing is trained again).
    """

    store: CheckpointStore
    every_epochs: int
    data_fingerprint: str
    trajectory: dict[str, Any]
    resume: bool
    tracking_run_id: str | None = None


class ExponentialMovingAverage:
    """A copy of G whose weights and BatchNorm statistics trail G's: w <- decay * w + (1 - decay) * w_G."""

    def __init__(self, generator: nn.Module, decay: float, warmup: float = 0.0) -> None:
        self.module = copy.deepcopy(generator).requires_grad_(False)
        self.decay, self.warmup = decay, warmup
        pairs = list(zip(self._tensors(self.module), self._tensors(generator), strict=True))
        self._averaged = [mine for mine, _ in pairs if mine.is_floating_point()]
        self._sources = [theirs for mine, theirs in pairs if mine.is_floating_point()]
        self._copied = [(mine, theirs) for mine, theirs in pairs if not mine.is_floating_point()]

    @staticmethod
    def _tensors(module: nn.Module) -> list[torch.Tensor]:
        return [tensor.detach() for tensor in chain(module.parameters(), module.buffers())]

    def decay_at(self, step: int) -> float:
        """The decay after ``step`` updates of G: StyleGAN2-ADA's ramp caps the half-life at ``warmup`` x step, so
        early on the average follows G (a constant 0.999 keeps 90% of the random start after 100 steps)."""
        if self.warmup <= 0:
            return self.decay
        return min(self.decay, 0.5 ** (1 / (self.warmup * step)))

    @torch.no_grad()
    def update(self, step: int) -> None:
        """One fused update of every float tensor (``step``: G's updates so far): no host sync, a handful of kernels."""
        torch._foreach_lerp_(self._averaged, self._sources, 1 - self.decay_at(step))
        for averaged, current in self._copied:  # integer buffers such as BatchNorm's batch counter
            averaged.copy_(current)


def sample_images(generator: nn.Module, latent: torch.Tensor) -> torch.Tensor:
    """Generate without touching BatchNorm statistics or autograd."""
    was_training = generator.training
    generator.eval()
    with torch.no_grad():
        images = generator(latent)
    generator.train(was_training)
    return images.float().cpu()


@torch.no_grad()
def standing_statistics(
    generator: nn.Module, batch_size: int, batches: int, seed: int, progress_bar: bool = False
) -> nn.Module:
    """A copy of ``generator`` whose BatchNorm layers normalise in eval mode as they did, on average, in training.

    Training divides each activation by the standard deviation of its batch; eval mode by the
    population's, which is smaller than the mean of the reciprocal (Jensen: by 4% per layer at batch 32),
    so eval-mode samples come out flatter than those D was trained against. Like BigGAN's standing
    statistics this runs training-sized batches of G's own samples, but it keeps the mean of 1 / std.
    """
    calibrated = copy.deepcopy(generator)
    layers = [m for m in calibrated.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not layers or batches == 0:
        return calibrated.eval()
    means: dict[nn.Module, list[torch.Tensor]] = {layer: [] for layer in layers}
    inverse_stds: dict[nn.Module, list[torch.Tensor]] = {layer: [] for layer in layers}

    def record(layer: nn.Module, inputs: tuple[torch.Tensor], _: torch.Tensor) -> None:
        dims = [0, *range(2, inputs[0].ndim)]  # all but the channel dimension
        means[layer].append(inputs[0].float().mean(dims))
        inverse_stds[layer].append((inputs[0].float().var(dims, unbiased=False) + layer.eps).rsqrt())

    hooks = [layer.register_forward_hook(record) for layer in layers]
    device = next(calibrated.parameters()).device
    rng = torch.Generator(device=device).manual_seed(seed)
    calibrated.train()
    for _ in tqdm(range(batches), desc="BatchNorm statistics", unit="batch", disable=not progress_bar):
        calibrated(torch.randn(batch_size, calibrated.arch.latent_dim, generator=rng, device=device))
    for hook in hooks:
        hook.remove()
    for layer in layers:
        layer.running_mean.copy_(torch.stack(means[layer]).mean(0))
        layer.running_var.copy_(torch.stack(inverse_stds[layer]).mean(0).pow(-2) - layer.eps)
    return calibrated.eval()


def learning_rate_scale(epoch: int, epochs: int, decay_start: float) -> float:
    """1 until ``decay_start`` of the epochs are done, then a linear fall that would reach 0 after the last.

    A function of the epoch alone, so a resumed run picks the schedule up without saving it.
    """
    decay_epochs = epochs * (1 - decay_start)
    return 1.0 if decay_epochs <= 0 else min(1.0, (epochs - epoch + 1) / decay_epochs)


def shard_indices(order: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
    """DistributedSampler(drop_last=True) on a permutation every process shares: disjoint, equal shards."""
    usable = len(order) - len(order) % world_size
    return order[rank:usable:world_size]


def steps_per_epoch(num_samples: int, config: TrainingSettings, world_size: int) -> int:
    """Full steps per epoch; one step takes ``discriminator_steps`` batches. Partial batches are dropped."""
    return (num_samples // world_size) // (config.batch_size * config.discriminator_steps)


@dataclass
class TrainingState:
    """Everything a checkpoint holds."""

    generator: nn.Module
    discriminator: nn.Module
    ema: ExponentialMovingAverage | None
    optimizer_g: torch.optim.Optimizer
    optimizer_d: torch.optim.Optimizer
    shuffle_rng: torch.Generator  # the same stream on every process: one shared order per epoch
    noise_rng: torch.Generator  # a different stream per process: latents and augmentations
    epoch: int = 0  # epochs completed
    step: int = 0  # steps completed
    history: list[dict[str, float]] = field(default_factory=list)
    snapshots: list[tuple[int, torch.Tensor]] = field(default_factory=list)

    def _rng_states(self) -> dict[str, torch.Tensor]:
        states = {
            "torch": torch.get_rng_state(),
            "shuffle": self.shuffle_rng.get_state(),
            "noise": self.noise_rng.get_state(),
        }
        if self.noise_rng.device.type == "cuda":
            states["cuda"] = torch.cuda.get_rng_state(self.noise_rng.device)
        return states

    def tensors(self, distributed: DistributedContext) -> dict[str, torch.Tensor]:
        """The state as flat named tensors; a collective (RNG states of every process are gathered)."""
        tensors = {
            **module_tensors("generator", self.generator),
            **module_tensors("discriminator", self.discriminator),
            **optimizer_tensors("optimizer_g", self.optimizer_g),
            **optimizer_tensors("optimizer_d", self.optimizer_d),
            **{f"snapshot.{epoch}": images for epoch, images in self.snapshots},
        }
        if self.ema is not None:
            tensors.update(module_tensors("ema", self.ema.module))
        for rank, states in enumerate(distributed.gather(self._rng_states())):
            tensors.update({f"rng.{rank}.{name}": state for name, state in states.items()})
        return tensors

    def restore(self, record: CheckpointRecord, tensors: dict[str, torch.Tensor], rank: int) -> None:
        restore_module("generator", self.generator, tensors)
        restore_module("discriminator", self.discriminator, tensors)
        restore_optimizer("optimizer_g", self.optimizer_g, tensors)
        restore_optimizer("optimizer_d", self.optimizer_d, tensors)
        if self.ema is not None:
            restore_module("ema", self.ema.module, tensors)
        torch.set_rng_state(tensors[f"rng.{rank}.torch"])
        self.shuffle_rng.set_state(tensors[f"rng.{rank}.shuffle"])
        self.noise_rng.set_state(tensors[f"rng.{rank}.noise"])
        if self.noise_rng.device.type == "cuda":
            torch.cuda.set_rng_state(tensors[f"rng.{rank}.cuda"], self.noise_rng.device)
        self.epoch, self.step, self.history = record.epoch, record.step, list(record.history)
        self.snapshots = sorted(
            (int(key.split(".", 1)[1]), images) for key, images in tensors.items() if key.startswith("snapshot.")
        )


@dataclass(frozen=True)
class StepOutputs:
    """One step's losses and D's raw outputs, still on the device (reading them would sync)."""

    d_loss: torch.Tensor
    g_loss: torch.Tensor
    real_logits: torch.Tensor
    fake_logits: torch.Tensor


def uses_input_gradients(config: TrainingSettings) -> bool:
    """R1 and WGAN-GP differentiate D's input gradients: double backward, which compiled graphs lack."""
    return config.r1_gamma > 0 or config.loss == "wgan_gp"


class AdversarialStep:
    """One training step: ``discriminator_steps`` D updates, then one G update through the updated D."""

    def __init__(
        self,
        state: TrainingState,
        loss: GANLoss,
        config: TrainingSettings,
        speed: SpeedSettings,
        distributed: DistributedContext,
        device: torch.device,
    ) -> None:
        self.state, self.loss, self.config, self.device = state, loss, config, device
        self.latent_dim = state.generator.arch.latent_dim
        self.augmentations = config.diff_augment
        compile_d = speed.compile and not uses_input_gradients(config)
        if speed.compile and not compile_d:
            logger.info("torch.compile leaves D eager: gradient penalties need double backward")

        def prepare(module: nn.Module, compiled: bool) -> nn.Module:
            # Static shapes: the batch size is fixed, so each shape compiles once (no dynamic-shape graphs).
            return torch.compile(module, dynamic=False) if compiled else module

        # Gradients of the DDP-wrapped modules are averaged across processes in backward. In
        # G's update, D is used unwrapped and frozen: only G's gradients are computed and shared.
        self.generator = prepare(distributed.wrap(state.generator, device), speed.compile)
        self.discriminator = prepare(distributed.wrap(state.discriminator, device), compile_d)
        self.frozen_discriminator = (
            prepare(state.discriminator, compile_d) if distributed.is_distributed else self.discriminator
        )
        self.autocast: Callable[[], AbstractContextManager] = lambda: torch.autocast(
            device.type, dtype=torch.bfloat16, enabled=speed.bf16
        )
        self.channels_last = speed.channels_last

    def _augment(self, images: torch.Tensor) -> torch.Tensor:
        if not self.augmentations:
            return images
        return diff_augment(images, self.augmentations, self.state.noise_rng)

    def _latent(self) -> torch.Tensor:
        return torch.randn(
            self.config.fakes_per_step, self.latent_dim, generator=self.state.noise_rng, device=self.device
        )

    def __call__(self, real_batches: list[torch.Tensor]) -> StepOutputs:
        state, config = self.state, self.config
        for index, batch in enumerate(real_batches):
            real = batch.contiguous(memory_format=torch.channels_last) if self.channels_last else batch
            keep_graph = index == len(real_batches) - 1  # the last fake also trains G
            with self.autocast(), torch.set_grad_enabled(keep_graph):
                fake = self.generator(self._latent())

            # Discriminator: maximise its objective on real vs fake; G is held fixed by detach().
            with self.autocast():
                real_seen, fake_seen = self._augment(real), self._augment(fake.detach())
                scores = self.loss.discriminator_loss(self.discriminator, real_seen, fake_seen)
                d_loss = scores.loss
                if config.r1_gamma > 0:
                    d_loss = d_loss + config.r1_gamma / 2 * r1_penalty(self.discriminator, real_seen.detach())
            state.optimizer_d.zero_grad(set_to_none=True)
            d_loss.backward()
            state.optimizer_d.step()

        # Generator: make the updated D score its samples as real (frozen D: no D gradients).
        state.discriminator.requires_grad_(False)
        with self.autocast():
            g_loss = self.loss.generator_loss(self.frozen_discriminator, self._augment(fake))
        state.optimizer_g.zero_grad(set_to_none=True)
        g_loss.backward()
        state.optimizer_g.step()
        state.discriminator.requires_grad_(True)
        if state.ema is not None:
            state.ema.update(state.step + 1)
        return StepOutputs(scores.loss.detach(), g_loss.detach(), scores.real_logits, scores.fake_logits)


class HealthMonitor:
    """Counts non-finite losses and consecutive steps where D wins outright, on the device.

    Counting costs a few tiny kernels per step and no host sync; the counters are read only
    when the loop syncs anyway (logging, end of epoch).
    """

    def __init__(self, params: HealthSettings, loss: GANLoss, device: torch.device) -> None:
        self.params, self.loss = params, loss
        self.nonfinite = torch.zeros((), device=device)
        self.win_streak = torch.zeros((), device=device)
        self.reported_win = False

    def update(self, outputs: StepOutputs) -> torch.Tensor:
        """Fold one step in; returns D(G(z)) (mean realness of the fakes) for the history."""
        losses = torch.stack([outputs.d_loss.float(), outputs.g_loss.float()])
        self.nonfinite += (~torch.isfinite(losses)).any()
        d_fake = self.loss.realness(outputs.fake_logits.detach()).mean()
        self.win_streak = torch.where(
            d_fake < self.params.discriminator_win_score, self.win_streak + 1, torch.zeros_like(self.win_streak)
        )
        return d_fake

    def raise_if_diverged(self, nonfinite: float, row: dict[str, float], on_alert: AlertCallback) -> None:
        """Stop the run on a non-finite loss, before any checkpoint is written from the bad state."""
        if nonfinite == 0:
            return
        message = (
            f"non-finite loss by step {int(row['step'])} (last logged d_loss={row.get('d_loss')}, "
            f"g_loss={row.get('g_loss')}); training stopped and the last good checkpoint is kept. Lower "
            "generator_lr / discriminator_lr, try the hinge loss or spectral normalisation of D, or train in fp32 "
            "precision"
        )
        on_alert("diverged", message)
        raise TrainingDivergedError(message)

    def warn_if_discriminator_won(self, win_streak: float, row: dict[str, float], on_alert: AlertCallback) -> None:
        """Warn once per episode of D rejecting every fake for ``discriminator_win_steps`` steps in a row."""
        if win_streak == 0:
            self.reported_win = False
        if win_streak < self.params.discriminator_win_steps or self.reported_win:
            return
        self.reported_win = True
        message = (
            f"the discriminator has won outright for {int(win_streak)} steps by step {int(row['step'])} "
            f"(D(G(z)) = {row['d_fake']:.4f} < {self.params.discriminator_win_score}, g_loss = "
            f"{row['g_loss']:.2f}): G gets little signal. Consider spectral normalisation of D, an R1 penalty "
            "(r1_gamma), DiffAugment (diff_augment) or a lower discriminator_lr"
        )
        logger.warning(message)
        on_alert("discriminator_won", message)


def _ignore_alert(key: str, message: str) -> None:
    """The default alert sink: the loop already logs warnings."""


class GANTrainer:
    """Sets training up (devices, optimisers, EMA, resume, DDP, compile), then trains epoch by epoch.

    ``train_epoch`` is the project's training loop proper, timed as is by the throughput
    benchmark; ``fit`` adds what happens between epochs: snapshots and checkpoints.
    """

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        real: torch.Tensor,
        config: TrainingSettings,
        rng: torch.Generator,
        on_step: StepCallback | None = None,
        on_alert: AlertCallback = _ignore_alert,
        checkpointing: Checkpointing | None = None,
        distributed: DistributedContext = SINGLE_PROCESS,
        speed: SpeedSettings | None = None,
    ) -> None:
        device = real.device
        speed = speed or SpeedSettings.resolve(config.speed, device)
        speed = replace(speed, channels_last=speed.channels_last and real.ndim == 4)  # vectors have no channels
        check_batch_fits(len(real), config, distributed.world_size)
        check_packing_fits(config)
        check_augmentations_fit(tuple(real.shape[1:]), config)
        if speed.channels_last:
            generator, discriminator = (net.to(memory_format=torch.channels_last) for net in (generator, discriminator))
            real = real.contiguous(memory_format=torch.channels_last)
        self.real, self.config, self.distributed, self.speed = real, config, distributed, speed
        self.on_step, self.on_alert, self.checkpointing = on_step, on_alert, checkpointing
        self.fixed_latent = torch.randn(
            config.num_fixed_samples, generator.arch.latent_dim, generator=rng, device=device
        )
        if distributed.is_distributed:
            torch.manual_seed(config.seed + distributed.rank)  # dropout masks differ per process
        # One kernel per optimiser step; on CPU the per-parameter loop cost a quarter of a digits run.
        fused = device.type in ("cuda", "cpu")
        ema = ExponentialMovingAverage(generator, config.ema_decay, config.ema_warmup) if config.ema_decay > 0 else None
        self.state = TrainingState(
            generator=generator,
            discriminator=discriminator,
            ema=ema,
            optimizer_g=torch.optim.Adam(generator.parameters(), config.generator_lr, betas=config.betas, fused=fused),
            optimizer_d=torch.optim.Adam(
                discriminator.parameters(), config.discriminator_lr, betas=config.betas, fused=fused
            ),
            shuffle_rng=rng,
            noise_rng=torch.Generator(device=device).manual_seed(config.seed + 1_000_003 * (distributed.rank + 1)),
        )
        self.resumed_from = _resume(self.state, checkpointing, distributed)
        if distributed.is_main and on_step is not None:
            for row in self.state.history:  # lets the caller fill in steps it has not recorded yet
                on_step(int(row["step"]), row)

        self.loss = build_loss(config)
        self.step_fn = AdversarialStep(self.state, self.loss, config, speed, distributed, device)
        self.health = HealthMonitor(config.health, self.loss, device)
        self.shipped = self.state.generator if self.state.ema is None else self.state.ema.module
        self.steps_per_epoch = steps_per_epoch(len(real), config, distributed.world_size)
        self.total_steps = config.epochs * self.steps_per_epoch
        self.images_per_step = config.batch_size * config.discriminator_steps * distributed.world_size
        self.progress = tqdm(
            total=self.total_steps,
            initial=self.state.step,
            desc="training",
            unit="step",
            disable=not (config.progress_bar and distributed.is_main),
        )
        self.started, self.first_step = time.perf_counter(), self.state.step

    def _epoch_batches(self) -> torch.Tensor:
        """This process' sample indices for one epoch, shaped (steps, discriminator_steps, batch_size)."""
        config, distributed = self.config, self.distributed
        order = torch.randperm(len(self.real), generator=self.state.shuffle_rng, device=self.real.device)
        shard = shard_indices(order, distributed.rank, distributed.world_size)
        used = self.steps_per_epoch * config.discriminator_steps * config.batch_size
        return shard[:used].view(self.steps_per_epoch, config.discriminator_steps, config.batch_size)

    def train_epoch(self, epoch: int) -> None:
        """One pass over this process' shard; no host sync except at logging steps and the end."""
        state, config = self.state, self.config
        scale = learning_rate_scale(epoch, config.epochs, config.lr_decay_start)
        for optimizer, rate in ((state.optimizer_g, config.generator_lr), (state.optimizer_d, config.discriminator_lr)):
            for group in optimizer.param_groups:
                group["lr"] = rate * scale
        with cudnn_autotuning(self.speed.cudnn_benchmark):
            for step_indices in self._epoch_batches():
                outputs = self.step_fn([self.real[indices] for indices in step_indices])
                d_fake = self.health.update(outputs)
                state.step += 1
                if state.step % config.log_every_steps == 0 or state.step == self.total_steps:
                    self._log(epoch, outputs, d_fake)
                self.progress.update()
        _check_finite_at_epoch_end(self.health, state, self.distributed, self.on_alert)
        state.epoch = epoch

    def _log(self, epoch: int, outputs: StepOutputs, d_fake: torch.Tensor) -> None:
        state = self.state
        row = _history_row(
            epoch, state.step, self.started, outputs, d_fake, self.loss, self.health, self.distributed, self.on_alert
        )
        row["images_per_second"] = (state.step - self.first_step) * self.images_per_step / row.pop("seconds")
        state.history.append(row)
        if self.distributed.is_main and self.on_step is not None:
            self.on_step(state.step, row)
        self.progress.set_postfix(
            epoch=epoch,
            d_loss=f"{row['d_loss']:.3f}",
            g_loss=f"{row['g_loss']:.3f}",
            img_s=f"{row['images_per_second']:.0f}",
        )

    def fit(self) -> TrainingResult:
        """Train the remaining epochs, snapshotting the fixed noise and checkpointing between them."""
        config, state, checkpointing = self.config, self.state, self.checkpointing
        shipped = None
        for epoch in range(state.epoch + 1, config.epochs + 1):
            self.train_epoch(epoch)
            if epoch % config.sample_every_epochs == 0 or epoch == config.epochs:
                shipped = self.as_shipped(epoch == config.epochs and config.progress_bar and self.distributed.is_main)
                state.snapshots.append((epoch, sample_images(shipped, self.fixed_latent)))
            if checkpointing is not None and (epoch % checkpointing.every_epochs == 0 or epoch == config.epochs):
                _save_checkpoint(state, checkpointing, self.distributed, epoch == config.epochs)
        self.progress.close()
        if shipped is None:  # a finished run resumed: no epoch was left to train
            shipped = self.as_shipped(config.progress_bar and self.distributed.is_main)
        return TrainingResult(shipped, state.history, state.snapshots, self.resumed_from)

    def as_shipped(self, progress_bar: bool = False) -> nn.Module:
        """The generator as it would be shipped (and evaluated) now: the EMA, or G, with standing statistics.

        The progress snapshots sample this too, so that each shows what the evaluation would see at its epoch
        (the raw EMA's BatchNorm statistics trail its weights, and early on its samples are flat grey).
        """
        config = self.config
        return standing_statistics(
            self.shipped, config.fakes_per_step, config.standing_statistics_batches, config.seed, progress_bar
        )


def train_gan(
    generator: nn.Module,
    discriminator: nn.Module,
    real: torch.Tensor,
    config: TrainingSettings,
    rng: torch.Generator,
    on_step: StepCallback | None = None,
    on_alert: AlertCallback = _ignore_alert,
    checkpointing: Checkpointing | None = None,
    distributed: DistributedContext = SINGLE_PROCESS,
    speed: SpeedSettings | None = None,
) -> TrainingResult:
    """Train ``generator`` and ``discriminator`` on ``real`` (N, C, H, W) in [-1, 1], or (N, D) vectors.

    ``real``, both networks and ``rng`` must already be on the training device; ``rng`` shuffles
    (seeded alike on every process). ``on_step`` gets the global step and its metrics every
    ``log_every_steps`` steps, ``on_alert`` health warnings, both on the main process only. With
    ``checkpointing`` (and its ``resume``) an unfinished run continues from its last checkpoint.
    """
    trainer = GANTrainer(
        generator, discriminator, real, config, rng, on_step, on_alert, checkpointing, distributed, speed
    )
    return trainer.fit()


def check_batch_fits(num_samples: int, config: TrainingSettings, world_size: int) -> None:
    """Refuse a batch (times D's steps) larger than one process' share of ``num_samples``."""
    per_process = num_samples // world_size
    steps = config.discriminator_steps
    if config.batch_size * steps > per_process:
        batches = f" x discriminator_steps {steps}" if steps > 1 else ""
        shard = f" per process ({world_size} processes)" if world_size > 1 else ""
        raise SettingError(
            "batch_size",
            f"{config.batch_size}{batches} is larger than the training data ({per_process} samples{shard}); lower it"
            + (" or discriminator_steps" if batches else ""),
        )


def check_packing_fits(config: TrainingSettings) -> None:
    """PacGAN's D scores whole packs: the real batch and G's samples per step must divide into them."""
    sizes = {"the real batch (batch_size)": config.batch_size, "G's samples per step": config.fakes_per_step}
    for what, size in sizes.items():
        if size % config.packing:
            raise SettingError(
                "packing",
                f"D scores packs of {config.packing} samples, which do not divide {what}, {size}: make the batch "
                "sizes multiples of it",
            )


def check_augmentations_fit(sample_shape: tuple[int, ...], config: TrainingSettings) -> None:
    """DiffAugment shifts pixels: refuse it for samples that are not images ``(C, H, W)``."""
    if config.diff_augment and len(sample_shape) != 3:
        raise SettingError(
            "diff_augment",
            f"{list(config.diff_augment)} augments images (C, H, W) but these samples have shape "
            f"{tuple(sample_shape)}; set it to []",
        )


def _resume(state: TrainingState, checkpointing: Checkpointing | None, distributed: DistributedContext) -> int:
    """Restore the last checkpoint of this run if there is one; returns the step resumed from (0: none)."""
    if checkpointing is None or not checkpointing.resume:
        return 0

    def decide() -> tuple[CheckpointRecord | None, CheckpointError | None]:
        try:
            network = network_settings(state.generator.arch)
            trajectory, fingerprint = checkpointing.trajectory, checkpointing.data_fingerprint
            store, run_id = checkpointing.store, checkpointing.tracking_run_id
            return store.resumable(trajectory, fingerprint, network, run_id), None
        except CheckpointError as err:
            return None, err

    # The main process decides and tells the others: all resume from the same checkpoint, or all stop.
    record, refusal = decide() if distributed.is_main else (None, None)
    record, problem = distributed.from_main((record, None if refusal is None else str(refusal)))
    if refusal is not None:
        raise refusal
    if problem is not None:
        raise CheckpointError(problem)
    if record is None:
        return 0
    state.restore(record, checkpointing.store.load(record), distributed.rank)
    logger.info(
        "Resumed from %s: epoch %d, step %d",
        checkpointing.store.directory / record.tensors_file,
        record.epoch,
        record.step,
    )
    return record.step


def _history_row(
    epoch: int,
    step: int,
    started: float,
    outputs: StepOutputs,
    d_fake: torch.Tensor,
    loss: GANLoss,
    health: HealthMonitor,
    distributed: DistributedContext,
    on_alert: AlertCallback,
) -> dict[str, float]:
    """Average the metrics over processes, read them (one host sync) and check health.

    ``seconds`` is the slowest process' training time so far: throughput counts all processes.
    """
    d_real = loss.realness(outputs.real_logits.detach()).mean()
    metrics = distributed.mean(torch.stack([outputs.d_loss.float(), outputs.g_loss.float(), d_real, d_fake]))
    seconds = torch.tensor(time.perf_counter() - started, device=d_real.device)
    counters = distributed.maximum(torch.stack([health.nonfinite, health.win_streak, seconds]))
    nonfinite, win_streak, slowest = counters.tolist()
    row = {"epoch": epoch, "step": step, **dict(zip(METRIC_NAMES, metrics.tolist(), strict=True)), "seconds": slowest}
    alert = on_alert if distributed.is_main else _ignore_alert
    health.raise_if_diverged(nonfinite, row, alert)
    health.warn_if_discriminator_won(win_streak, row, alert)
    return row


def _check_finite_at_epoch_end(
    health: HealthMonitor, state: TrainingState, distributed: DistributedContext, on_alert: AlertCallback
) -> None:
    """No checkpoint is written from a state that saw a non-finite loss since the last logged step."""
    nonfinite = distributed.maximum(health.nonfinite).item()
    last_logged = state.history[-1] if state.history else {}
    health.raise_if_diverged(
        nonfinite, {**last_logged, "step": state.step}, on_alert if distributed.is_main else _ignore_alert
    )


def _save_checkpoint(
    state: TrainingState, checkpointing: Checkpointing, distributed: DistributedContext, completed: bool
) -> None:
    tensors = state.tensors(distributed)  # every process takes part: RNG states are gathered
    if not distributed.is_main:
        return
    record = CheckpointRecord(
        tensors_file="",
        epoch=state.epoch,
        step=state.step,
        completed=completed,
        trajectory=checkpointing.trajectory,
        data_fingerprint=checkpointing.data_fingerprint,
        tracking_run_id=checkpointing.tracking_run_id,
        history=state.history,
        network=network_settings(state.generator.arch),
    )
    checkpointing.store.save(record, tensors)
