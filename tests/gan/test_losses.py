import math

import torch
from torch import nn

from gan_pipeline.gan.losses import LOSSES, NonSaturatingLoss


class ConstantLogit(nn.Module):
    """A 'discriminator' whose logit is a learnable constant: losses become closed-form."""

    def __init__(self, logit: float) -> None:
        super().__init__()
        self.logit = nn.Parameter(torch.tensor(logit))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.logit.expand(images.shape[0])


def test_an_undecided_discriminator_scores_two_log_two():
    images = torch.zeros(4, 1, 2, 2)
    scores = NonSaturatingLoss().discriminator_loss(ConstantLogit(0.0), images, images)
    assert math.isclose(scores.loss.item(), 2 * math.log(2), rel_tol=1e-6)


def test_generator_loss_is_non_saturating_when_the_discriminator_rejects_fakes():
    """With D(G(z)) ~ 0, -log D(G(z)) still has a large gradient; log(1 - D(G(z))) would not."""
    fake = torch.zeros(4, 1, 2, 2)
    discriminator = ConstantLogit(-8.0)
    NonSaturatingLoss().generator_loss(discriminator, fake).backward()
    non_saturating_grad = abs(discriminator.logit.grad.item())
    logit = torch.tensor(-8.0, requires_grad=True)
    torch.log1p(-torch.sigmoid(logit)).backward()  # the saturating minimax objective
    assert non_saturating_grad > 0.99
    assert non_saturating_grad > 100 * abs(logit.grad.item())


def test_generator_loss_falls_as_the_discriminator_is_fooled():
    fake = torch.zeros(4, 1, 2, 2)
    losses = [NonSaturatingLoss().generator_loss(ConstantLogit(x), fake).item() for x in (-2.0, 0.0, 2.0)]
    assert losses == sorted(losses, reverse=True)


def test_loss_registry_names_the_default():
    assert "non_saturating" in LOSSES
