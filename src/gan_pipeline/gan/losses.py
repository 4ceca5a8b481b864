"""How the discriminator and the generator are scored and regularised, by name.

Each loss gets the discriminator itself (not only its outputs) so that losses with penalties on
D's gradients fit the same interface. Every loss and penalty works for any input shape: images
``(N, C, H, W)`` or vectors ``(N, D)``.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn

from gan_pipeline.gan.settings import SettingError, TrainingSettings


@dataclass(frozen=True)
class DiscriminatorScores:
    """D's loss plus its raw outputs, which the loop turns into D(x) and D(G(z))."""

    loss: torch.Tensor
    real_logits: torch.Tensor
    fake_logits: torch.Tensor


def uses_batch_statistics(discriminator: nn.Module) -> bool:
    return any(isinstance(module, nn.modules.batchnorm._BatchNorm) for module in discriminator.modules())


def score_real_and_fake(
    discriminator: nn.Module, real: torch.Tensor, fake: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """D's outputs on real and on fake samples.

    One forward pass over both batches together (fewer, larger kernels: about a quarter faster
    for the article's D on CPU) unless D normalises by batch statistics, where mixing real and
    fake in one batch would change what D computes.
    """
    if uses_batch_statistics(discriminator):
        return discriminator(real), discriminator(fake)
    outputs = discriminator(torch.cat([real, fake.to(real.dtype)]))
    real_outputs = len(outputs) * len(real) // (len(real) + len(fake))  # a packing D scores packs, not samples
    return outputs[:real_outputs], outputs[real_outputs:]


class GANLoss(Protocol):
    def discriminator_loss(
        self, discriminator: nn.Module, real: torch.Tensor, fake: torch.Tensor
    ) -> DiscriminatorScores: ...

    def generator_loss(self, discriminator: nn.Module, fake: torch.Tensor) -> torch.Tensor: ...

    def realness(self, outputs: torch.Tensor) -> torch.Tensor:
        """D's raw outputs mapped to [0, 1]: 1 = judged real, 0 = judged fake (for logs and health checks)."""
        ...


class NonSaturatingLoss:
    """Goodfellow et al. (2014): D maximises log D(x) + log(1 - D(G(z))); G maximises log D(G(z))."""

    def discriminator_loss(
        self, discriminator: nn.Module, real: torch.Tensor, fake: torch.Tensor
    ) -> DiscriminatorScores:
        real_logits, fake_logits = score_real_and_fake(discriminator, real, fake)
        loss = F.binary_cross_entropy_with_logits(
            real_logits, torch.ones_like(real_logits)
        ) + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
        return DiscriminatorScores(loss, real_logits, fake_logits)

    def generator_loss(self, discriminator: nn.Module, fake: torch.Tensor) -> torch.Tensor:
        fake_logits = discriminator(fake)
        return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))

    def realness(self, outputs: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(outputs.float())


class LeastSquaresLoss:
    """Mao et al. (2017), as the article's Keras code: D regresses x -> 1 and G(z) -> 0; G pushes D(G(z)) -> 1."""

    def discriminator_loss(
        self, discriminator: nn.Module, real: torch.Tensor, fake: torch.Tensor
    ) -> DiscriminatorScores:
        real_out, fake_out = score_real_and_fake(discriminator, real, fake)
        loss = F.mse_loss(real_out.float(), torch.ones_like(real_out, dtype=torch.float32)) + F.mse_loss(
            fake_out.float(), torch.zeros_like(fake_out, dtype=torch.float32)
        )
        return DiscriminatorScores(loss, real_out, fake_out)

    def generator_loss(self, discriminator: nn.Module, fake: torch.Tensor) -> torch.Tensor:
        fake_out = discriminator(fake).float()
        return F.mse_loss(fake_out, torch.ones_like(fake_out))

    def realness(self, outputs: torch.Tensor) -> torch.Tensor:
        return outputs.float().clamp(0, 1)


class HingeLoss:
    """Lim & Ye (2017), Miyato et al. (2018): D wants D(x) >= 1 and D(G(z)) <= -1; G maximises D(G(z))."""

    def discriminator_loss(
        self, discriminator: nn.Module, real: torch.Tensor, fake: torch.Tensor
    ) -> DiscriminatorScores:
        real_out, fake_out = score_real_and_fake(discriminator, real, fake)
        loss = F.relu(1 - real_out.float()).mean() + F.relu(1 + fake_out.float()).mean()
        return DiscriminatorScores(loss, real_out, fake_out)

    def generator_loss(self, discriminator: nn.Module, fake: torch.Tensor) -> torch.Tensor:
        return -discriminator(fake).float().mean()

    def realness(self, outputs: torch.Tensor) -> torch.Tensor:
        return ((outputs.float() + 1) / 2).clamp(0, 1)


class WassersteinGPLoss:
    """Gulrajani et al. (2017): the critic maximises D(x) - D(G(z)) with a unit-gradient penalty
    on points between real and fake; G maximises D(G(z))."""

    def __init__(self, gradient_penalty_weight: float = 10.0) -> None:
        self.gradient_penalty_weight = gradient_penalty_weight

    def discriminator_loss(
        self, discriminator: nn.Module, real: torch.Tensor, fake: torch.Tensor
    ) -> DiscriminatorScores:
        real_out, fake_out = score_real_and_fake(discriminator, real, fake)
        pairs = min(len(real), len(fake))  # G may generate more samples per step than the real batch holds
        mix = torch.rand(pairs, *(1,) * (real.ndim - 1), device=real.device, dtype=real.dtype)
        between = torch.lerp(fake[:pairs].detach().to(real.dtype), real[:pairs].detach(), mix).requires_grad_(True)
        slopes = input_gradient_norms(discriminator, between)
        penalty = ((slopes - 1) ** 2).mean()
        loss = fake_out.float().mean() - real_out.float().mean() + self.gradient_penalty_weight * penalty
        return DiscriminatorScores(loss, real_out, fake_out)

    def generator_loss(self, discriminator: nn.Module, fake: torch.Tensor) -> torch.Tensor:
        return -discriminator(fake).float().mean()

    def realness(self, outputs: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(outputs.float())  # a monotone squashing of critic scores, not a probability


def input_gradient_norms(discriminator: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """Per-sample L2 norm of dD/dinput, kept differentiable so that it can be penalised."""
    if not inputs.requires_grad:
        inputs = inputs.detach().requires_grad_(True)
    outputs = discriminator(inputs)
    (gradients,) = torch.autograd.grad(outputs.float().sum(), inputs, create_graph=True)
    return gradients.float().flatten(1).norm(dim=1)


def r1_penalty(discriminator: nn.Module, real: torch.Tensor) -> torch.Tensor:
    """Mescheder et al. (2018): E ||dD(x)/dx||^2 on real data; the loop weights it by r1_gamma / 2."""
    return (input_gradient_norms(discriminator, real) ** 2).mean()


LOSSES: dict[str, Callable[[TrainingSettings], GANLoss]] = {
    "non_saturating": lambda config: NonSaturatingLoss(),
    "lsgan": lambda config: LeastSquaresLoss(),
    "hinge": lambda config: HingeLoss(),
    "wgan_gp": lambda config: WassersteinGPLoss(config.gradient_penalty_weight),
}


def build_loss(settings: TrainingSettings) -> GANLoss:
    if settings.loss not in LOSSES:
        raise SettingError("loss", f"unknown loss {settings.loss!r}; allowed: {sorted(LOSSES)}")
    return LOSSES[settings.loss](settings)
