import pytest
import torch

from gan_pipeline.config.base import ParameterError
from gan_pipeline.gan.augment import AUGMENTATIONS, diff_augment, random_cutout, random_translation
from gan_pipeline.gan.networks import build_networks
from gan_pipeline.gan.presets import PRESETS
from gan_pipeline.gan.runtime import seeded_generator
from gan_pipeline.gan.settings import SettingError
from gan_pipeline.gan.training import train_gan
from tests.settings import tiny_settings, training_params


def _rng(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_translation_moves_each_image_by_at_most_an_eighth_and_fills_with_zeros():
    images = torch.zeros(64, 1, 16, 16)
    images[:, :, 8, 8] = 1.0  # one bright pixel per image
    shifted = random_translation(images, _rng())
    rows, cols = (shifted[:, 0] == 1).nonzero()[:, 1:].T
    assert (shifted == 1).flatten(1).sum(1).eq(1).all()  # the pixel moved, nothing was duplicated
    assert (rows - 8).abs().max() <= 2 and (cols - 8).abs().max() <= 2  # 16 * 0.125 = 2 pixels
    assert len(set(zip(rows.tolist(), cols.tolist(), strict=True))) > 5  # per-image shifts
    full = random_translation(torch.ones(64, 1, 16, 16), _rng())
    assert full.min() == 0 and full.max() == 1  # uncovered border pixels are zero


def test_cutout_zeroes_one_square_of_half_the_side_per_image():
    cut = random_cutout(torch.ones(32, 3, 8, 8), _rng())
    zeroed = (cut[:, 0] == 0).flatten(1).sum(1)
    assert zeroed.max() == 16 and zeroed.min() >= 4  # 4x4, clipped at the border
    assert torch.equal(cut[:, 0], cut[:, 2])  # the same square in every channel


def test_augmentations_are_differentiable_and_seeded():
    images = torch.rand(8, 3, 8, 8, requires_grad=True)
    names = tuple(AUGMENTATIONS)
    augmented = diff_augment(images, names, _rng(1))
    augmented.sum().backward()
    assert images.grad is not None and images.grad.abs().sum() > 0
    assert torch.equal(augmented, diff_augment(images, names, _rng(1)))
    assert not torch.equal(augmented, diff_augment(images, names, _rng(2)))


def test_an_unknown_augmentation_is_refused_with_the_allowed_names():
    with pytest.raises(ParameterError, match=r"training\.diff_augment: unknown augmentations \['flip'\]; allowed"):
        training_params(diff_augment=["translation", "flip"])


def test_diff_augment_on_vector_data_is_refused_with_the_fix():
    config = tiny_settings(diff_augment=("translation",))
    generator, discriminator = build_networks(PRESETS["digits_dcgan"])
    with pytest.raises(SettingError, match=r"diff_augment: .* augments images .* shape \(2,\); set it to \[\]"):
        train_gan(generator, discriminator, torch.randn(64, 2), config, seeded_generator(0, torch.device("cpu")))
