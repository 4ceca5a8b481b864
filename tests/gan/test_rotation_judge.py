"""The judge for data without labels: it learns which quarter turn an image was given, and its features rank
generators as they should, on crops of real photos (scikit-learn's two sample images)."""

from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image
from sklearn.datasets import load_sample_images

from gan_pipeline.gan.judge import ROTATIONS, Judge, judge_from_tensors, judge_to_tensors, rotated, train_judge
from gan_pipeline.gan.metrics import MetricInputs, compute_metrics, frechet_distance, image_metrics
from gan_pipeline.gan.networks import build_networks
from gan_pipeline.gan.presets import dcgan
from gan_pipeline.gan.runtime import seeded_generator
from gan_pipeline.gan.training import sample_images, standing_statistics, train_gan
from tests.settings import JUDGE_SETTINGS, SCORING, tiny_settings


def photo_crops(count: int, side: int, seed: int) -> torch.Tensor:
    """``count`` random ``side`` x ``side`` crops of the two sample photos shrunk to a third (so a crop shows
    enough of the scene to say which way is up), ``(N, 3, H, W)`` in [-1, 1]."""
    photos = [np.asarray(Image.fromarray(photo).reduce(3)) for photo in load_sample_images().images]
    rng = np.random.default_rng(seed)
    crops = []
    for index in range(count):
        photo = photos[index % len(photos)]
        top, left = rng.integers(0, photo.shape[0] - side), rng.integers(0, photo.shape[1] - side)
        crops.append(photo[top : top + side, left : left + side].transpose(2, 0, 1))
    return torch.from_numpy(np.stack(crops)).float() / 127.5 - 1


def test_every_image_is_given_each_quarter_turn_labelled_by_its_turns():
    images = torch.arange(2 * 3 * 4 * 4, dtype=torch.float32).view(2, 3, 4, 4)
    turned, turns = rotated(images)
    assert turned.shape == (8, 3, 4, 4) and turns.tolist() == [0, 1, 2, 3, 0, 1, 2, 3]
    assert torch.equal(turned[0], images[0]) and torch.equal(turned[2], images[0].flip(1, 2))  # 180 degrees
    assert torch.equal(turned[5], torch.rot90(images[1], 1, dims=(1, 2)))


@pytest.mark.parametrize(("side", "flattened"), [(8, 2), (28, 7), (32, 8), (64, 8), (128, 8), (256, 8)])
def test_the_judge_grows_a_stage_per_doubling_past_32_pixels_so_its_cost_follows_the_pixels(side, flattened):
    judge = Judge((3, side, side), ROTATIONS, 64, "rotation")
    assert judge.body[-2].in_features == 128 * flattened**2
    assert judge.features(torch.zeros(2, 3, side, side)).shape == (2, 64)


def test_the_judge_file_records_its_task():
    judge = Judge((3, 16, 16), ROTATIONS, 32, "rotation")
    assert judge_from_tensors(judge_to_tensors(judge, fingerprint="f")).task == "rotation"


@pytest.fixture(scope="module")
def photos() -> tuple[torch.Tensor, torch.Tensor]:
    return photo_crops(512, 32, seed=0), photo_crops(512, 32, seed=1)


@pytest.fixture(scope="module")
def rotation_judge(photos) -> Judge:
    train, _ = photos
    settings = replace(JUDGE_SETTINGS, task="rotation", epochs=4, batch_size=32)
    return train_judge(train, torch.zeros(len(train), dtype=torch.long), 1, settings)


def test_the_rotation_judge_learns_its_task_and_reports_no_class_metrics(photos, rotation_judge):
    train, validation = photos
    unlabelled = torch.zeros(len(validation), dtype=torch.long)
    inputs = MetricInputs(rotation_judge, train, validation, unlabelled, validation, SCORING)
    metrics = compute_metrics(image_metrics(rotation_judge), inputs)
    assert metrics["judge_val_accuracy"] > 0.45  # chance: 0.25
    assert not {"classes_covered", "class_kl_divergence", "judge_inception_score", "modes_covered"} & set(metrics)


@pytest.mark.slow
def test_its_frechet_distance_orders_real_a_briefly_trained_an_untrained_generator_and_noise(photos, rotation_judge):
    train, validation = photos
    torch.manual_seed(0)
    arch = dcgan(32, 3, width=16)
    generator, discriminator = build_networks(arch)
    latent = torch.randn(len(validation), arch.latent_dim, generator=torch.Generator().manual_seed(1))
    # Untrained, as the pipeline would ship it: eval-mode BatchNorm calibrated on its own samples.
    untrained = sample_images(standing_statistics(generator, 32, batches=20, seed=0), latent)
    settings = tiny_settings(epochs=30, ema_decay=0.0, standing_statistics_batches=20)
    rng = seeded_generator(0, torch.device("cpu"))
    trained = sample_images(train_gan(generator, discriminator, train, settings, rng).generator, latent)
    noise = torch.rand(validation.shape, generator=torch.Generator().manual_seed(2)) * 2 - 1
    distances = [frechet_distance(rotation_judge, validation, images) for images in (train, trained, untrained, noise)]
    assert distances == sorted(distances), distances  # real < briefly trained < untrained < noise
    assert distances[0] < 0.5 * distances[1]
