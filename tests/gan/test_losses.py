import math

import pytest
import torch
from torch import nn

from gan_pipeline.gan.losses import LOSSES, GANLoss, NonSaturatingLoss, build_loss, r1_penalty, score_real_and_fake
from tests.settings import tiny_settings


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


class LinearCritic(nn.Module):
    """D(x) = w . x: its input gradient is w everywhere, so gradient penalties are closed-form."""

    def __init__(self, weights: torch.Tensor) -> None:
        super().__init__()
        self.weights = nn.Parameter(weights)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        return inputs.flatten(1) @ self.weights


def _loss(name: str, **params) -> GANLoss:
    return build_loss(tiny_settings(loss=name, **params))


def test_every_loss_is_registered_by_its_configuration_name():
    assert set(LOSSES) == {"non_saturating", "lsgan", "hinge", "wgan_gp"}


@pytest.mark.parametrize(
    ("name", "undecided_loss"),
    [("lsgan", 1.0**2 + 0.0**2), ("hinge", 1.0 + 1.0), ("non_saturating", 2 * math.log(2))],
)
def test_each_loss_scores_a_discriminator_that_outputs_zero_in_closed_form(name, undecided_loss):
    images = torch.zeros(4, 1, 2, 2)
    scores = _loss(name).discriminator_loss(ConstantLogit(0.0), images, images)
    assert math.isclose(scores.loss.item(), undecided_loss, rel_tol=1e-6)


def test_least_squares_regresses_real_to_one_and_fake_to_zero():
    images = torch.zeros(4, 1, 2, 2)
    perfect = _loss("lsgan")
    assert perfect.discriminator_loss(ConstantLogit(1.0), images, images).loss.item() == 1.0  # fakes scored 1
    assert perfect.generator_loss(ConstantLogit(1.0), images).item() == 0.0  # G fools D completely


def test_hinge_loss_stops_pushing_once_the_margin_is_met():
    images = torch.zeros(4, 1, 2, 2)
    hinge = _loss("hinge")
    # D(.) = -3 scores fakes beyond the -1 margin (no loss) and reals 4 below the +1 margin.
    assert hinge.discriminator_loss(ConstantLogit(-3.0), images, images).loss.item() == 4.0
    assert hinge.discriminator_loss(ConstantLogit(3.0), images, images).loss.item() == 4.0
    assert hinge.generator_loss(ConstantLogit(2.5), images).item() == -2.5


def test_wgan_gp_penalises_the_critic_gradient_norm_away_from_one():
    real, fake = torch.ones(8, 1, 2, 2), torch.zeros(8, 1, 2, 2)
    wgan = _loss("wgan_gp", gradient_penalty_weight=10.0)
    unit = LinearCritic(torch.tensor([1.0, 0.0, 0.0, 0.0]))  # |grad| = 1: no penalty
    assert math.isclose(wgan.discriminator_loss(unit, real, fake).loss.item(), 0.0 - 1.0, abs_tol=1e-6)
    steep = LinearCritic(torch.tensor([3.0, 0.0, 0.0, 0.0]))  # |grad| = 3: penalty 10 * (3 - 1)^2
    assert math.isclose(wgan.discriminator_loss(steep, real, fake).loss.item(), -3.0 + 40.0, rel_tol=1e-6)


def test_r1_is_the_squared_input_gradient_norm_on_real_data_and_trains_d():
    critic = LinearCritic(torch.tensor([1.0, 2.0, 2.0, 0.0]))
    penalty = r1_penalty(critic, torch.randn(5, 1, 2, 2))
    assert math.isclose(penalty.item(), 9.0, rel_tol=1e-6)
    penalty.backward()
    torch.testing.assert_close(critic.weights.grad, 2 * torch.tensor([1.0, 2.0, 2.0, 0.0]))


@pytest.mark.parametrize("name", sorted(LOSSES))
@pytest.mark.parametrize("shape", [(6, 1, 4, 4), (6, 2)], ids=["images", "vectors"])
def test_every_loss_and_r1_work_on_images_and_vectors_with_more_fakes_than_reals(name, shape):
    features = math.prod(shape[1:])
    critic = LinearCritic(torch.randn(features))
    fake_shape = (9, *shape[1:])  # generated_batch_size may exceed the real batch
    real, fake = torch.randn(shape), torch.randn(fake_shape, requires_grad=True)
    loss = _loss(name)
    scores = loss.discriminator_loss(critic, real, fake.detach())
    (scores.loss + r1_penalty(critic, real)).backward()
    loss.generator_loss(critic, fake).backward()
    assert torch.isfinite(critic.weights.grad).all() and fake.grad.shape == fake_shape
    realness = loss.realness(scores.real_logits)
    assert realness.shape == (6,) and ((realness >= 0) & (realness <= 1)).all()


def test_real_and_fake_share_one_forward_pass_unless_d_uses_batch_statistics():
    batches = []
    plain = LinearCritic(torch.randn(4))
    plain.register_forward_pre_hook(lambda module, args: batches.append(len(args[0])))
    real_scores, fake_scores = score_real_and_fake(plain, torch.randn(3, 1, 2, 2), torch.randn(5, 1, 2, 2))
    assert batches == [8] and (len(real_scores), len(fake_scores)) == (3, 5)

    batches.clear()
    normalised = nn.Sequential(nn.Flatten(), nn.BatchNorm1d(4), nn.Linear(4, 1))
    normalised.register_forward_pre_hook(lambda module, args: batches.append(len(args[0])))
    score_real_and_fake(normalised, torch.randn(3, 1, 2, 2), torch.randn(5, 1, 2, 2))
    assert batches == [3, 5]
