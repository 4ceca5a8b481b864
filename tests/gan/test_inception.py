"""Inception-v3 for FID and KID, exercised with weights the test makes (same network, random values): the
reference file is never downloaded here. Parity with torch-fidelity's port is in BENCHMARKS.md (checked by
hand: that package needs torchvision, which has no CPU build here)."""

import math

import numpy as np
import pytest
import torch
from torch import nn

from gan_pipeline.gan.inception import FEATURES, load_inception, tensorflow_resize_matrix
from gan_pipeline.gan.metrics import MetricInputs, compute_metrics
from tests.settings import SCORING


def tensorflow_bilinear_weight(output: int, source_pixel: int, source: int, target: int) -> float:
    """TensorFlow 1.x's resize_bilinear (align_corners=False), one output pixel at a time, as its kernel reads."""
    position = float(np.float32(output) * np.float32(source / target))  # TensorFlow computes it in float32
    lower = math.floor(position)
    upper = min(lower + 1, source - 1)
    fraction = position - lower
    return (1 - fraction) * (source_pixel == lower) + fraction * (source_pixel == upper)


@pytest.mark.parametrize(("source", "target"), [(8, 299), (32, 299), (299, 299), (400, 299)])
def test_the_resize_weights_are_tensorflow_1x_bilinear(source, target):
    weights = tensorflow_resize_matrix(source, target)
    expected = torch.tensor(
        [[tensorflow_bilinear_weight(i, j, source, target) for j in range(source)] for i in range(target)]
    )
    assert torch.allclose(weights, expected.float(), atol=1e-6)
    assert torch.allclose(weights.sum(1), torch.ones(target))


def test_the_weights_load_without_running_code_and_other_files_are_refused(inception_weights_file, tmp_path):
    network = load_inception(inception_weights_file)
    assert not network.training and not any(parameter.requires_grad for parameter in network.parameters())
    other = tmp_path / "other.pth"
    torch.save(nn.Linear(3, 2).state_dict(), other)
    with pytest.raises(ValueError, match=r"is not Inception-v3's state dict: it lacks or adds"):
        load_inception(other)
    cut = tmp_path / "cut.pth"
    cut.write_bytes(inception_weights_file.read_bytes()[:100_000])
    with pytest.raises(ValueError, match=r"cut.pth is not a PyTorch weights file \(or is cut short\)"):
        load_inception(cut)


def test_any_square_image_grey_or_colour_gives_2048_features(inception_weights_file):
    network = load_inception(inception_weights_file)
    grey = torch.rand(2, 1, 16, 16) * 2 - 1
    features = network(grey)
    assert features.shape == (2, FEATURES) and torch.isfinite(features).all()
    assert torch.allclose(features, network(grey.expand(-1, 3, -1, -1)))  # grey is its own RGB
    assert network(torch.rand(2, 3, 40, 40) * 2 - 1).shape == (2, FEATURES)


def test_fid_is_zero_for_the_same_images_and_both_scores_rank_noise_last(inception_weights_file):
    network = load_inception(inception_weights_file)

    def images(seed: int, spread: float) -> torch.Tensor:
        return torch.rand(16, 3, 16, 16, generator=torch.Generator().manual_seed(seed)).sub(0.5).mul(2 * spread)

    real, alike, noise = images(1, 0.2), images(2, 0.2), images(3, 1.0)
    labels = torch.zeros(len(real), dtype=torch.long)

    def scores(generated: torch.Tensor) -> dict[str, float]:
        inputs = MetricInputs(None, real, real, labels, generated, SCORING, inception=network)
        return compute_metrics(["inception"], inputs)

    same, similar, different = scores(real), scores(alike), scores(noise)
    assert set(same) == {"inception_fid", "inception_kid", "inception_kid_std"}
    assert same["inception_fid"] == pytest.approx(0, abs=1e-2)
    assert similar["inception_fid"] > 1e-2 and different["inception_fid"] > 2 * similar["inception_fid"]
    assert different["inception_kid"] > similar["inception_kid"] + 3 * different["inception_kid_std"]
