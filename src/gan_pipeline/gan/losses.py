"""How the discriminator and the generator are scored, by name.

Each loss gets the discriminator itself (not only logits) so that losses with penalties on
D's gradients fit the same interface.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class DiscriminatorScores:
    """D's loss plus its raw logits, which the loop turns into D(x) and D(G(z))."""

    loss: torch.Tensor
    real_logits: torch.Tensor
    fake_logits: torch.Tensor


class GANLoss(Protocol):
    def discriminator_loss(
        self, discriminator: nn.Module, real: torch.Tensor, fake: torch.Tensor
    ) -> DiscriminatorScores: ...

    def generator_loss(self, discriminator: nn.Module, fake: torch.Tensor) -> torch.Tensor: ...


class NonSaturatingLoss:
    """Goodfellow et al. (2014): D maximises log D(x) + log(1 - D(G(z))); G maximises log D(G(z))."""

    def discriminator_loss(
        self, discriminator: nn.Module, real: torch.Tensor, fake: torch.Tensor
    ) -> DiscriminatorScores:
        real_logits, fake_logits = discriminator(real), discriminator(fake)
        loss = F.binary_cross_entropy_with_logits(
            real_logits, torch.ones_like(real_logits)
        ) + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
        return DiscriminatorScores(loss, real_logits, fake_logits)

    def generator_loss(self, discriminator: nn.Module, fake: torch.Tensor) -> torch.Tensor:
        fake_logits = discriminator(fake)
        return F.binary_cross_entropy_with_logits(fake_logits, torch.ones_like(fake_logits))


LOSSES: dict[str, Callable[[], GANLoss]] = {
    "non_saturating": NonSaturatingLoss,
}
