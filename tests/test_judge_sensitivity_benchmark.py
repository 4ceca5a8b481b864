"""The judge-sensitivity benchmark scores known damage to real images: none is the floor, more is worse."""

import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

from judge_sensitivity import (
    background_lifted,
    dequantised,
    dimmer,
    gaussian,
    grey_level,
    sensitivity_table,
    strokes_only,
)

from gan_pipeline.gan.judge import train_judge
from gan_pipeline.pipelines.data_processing.nodes import split_dataset
from tests.settings import JUDGE_SETTINGS, processing_params


@pytest.fixture(scope="module")
def digits_split(digits_raw) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    splits = split_dataset(digits_raw, processing_params())
    train, labels = torch.as_tensor(splits["train_set"].samples), torch.as_tensor(splits["train_set"].labels)
    return train, labels, torch.as_tensor(splits["validation_set"].samples)


def test_the_floor_scores_one_and_more_noise_scores_more(digits_split):
    train, labels, validation = digits_split
    judge = train_judge(train, labels, 10, replace(JUDGE_SETTINGS, epochs=3))
    noise = {"a little": gaussian(0.05), "more": gaussian(0.2), "dim": dimmer(0.9)}
    table = sensitivity_table(judge, train, validation, noise).set_index("perturbation").ratio
    assert table["none (the floor)"] == 1.0
    assert 1.0 < table["a little"] < table["more"]
    assert table["dim"] > 1.0


def test_the_grey_level_is_the_smallest_step_between_pixel_values():
    images = torch.tensor([-1.0, -0.5, 0.25, 1.0, -0.5]).view(1, 1, 1, 5)
    assert grey_level(images) == 0.5


def test_dequantisation_keeps_every_pixel_in_its_grey_level_and_shifts_none_on_average(digits_split):
    train = digits_split[0]
    step = grey_level(train)
    noisy = dequantised(train, torch.Generator().manual_seed(0))
    inside = (train > -1) & (train < 1)  # the extremes are clamped, so only they can lean one way
    assert (noisy - train).abs().max() <= step / 2  # half the smallest gap: still nearest to its own level
    assert abs(float((noisy - train)[inside].mean())) < step / 100


def test_lifting_the_background_moves_only_background_pixels(digits_split):
    train = digits_split[0]
    lifted = background_lifted(0.5)(train, torch.Generator())
    background = train == -1
    assert torch.allclose(lifted[background], torch.full_like(lifted[background], -1 + grey_level(train) / 2))
    assert torch.equal(lifted[~background], train[~background])


def test_noise_on_the_strokes_only_leaves_the_background_exactly_as_it_was(digits_split):
    train = digits_split[0]
    noisy = strokes_only(gaussian(0.1))(train, torch.Generator().manual_seed(0))
    background = train == -1
    assert torch.equal(noisy[background], train[background])
    assert (noisy[~background] != train[~background]).float().mean() > 0.9
