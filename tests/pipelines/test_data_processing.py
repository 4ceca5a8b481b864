from dataclasses import replace

import numpy as np
import pytest

from gan_pipeline.pipelines.data_processing.nodes import (
    InvalidDatasetError,
    profile_splits,
    split_dataset,
    validate_raw_dataset,
)
from tests.settings import processing_params


def test_split_scales_to_tanh_range_and_stratifies_by_class(digits_raw):
    splits = split_dataset(digits_raw, processing_params())
    train, val = splits["train_set"], splits["validation_set"]
    assert train.samples.dtype == np.float32
    assert train.samples.min() == -1.0 and train.samples.max() == 1.0
    assert len(train.labels) + len(val.labels) == len(digits_raw.labels)
    train_share = np.bincount(train.labels) / len(train.labels)
    val_share = np.bincount(val.labels) / len(val.labels)
    np.testing.assert_allclose(train_share, val_share, atol=0.01)


def test_split_is_seeded(digits_raw):
    params = processing_params(seed=7)
    first, second = split_dataset(digits_raw, params), split_dataset(digits_raw, params)
    np.testing.assert_array_equal(first["validation_set"].labels, second["validation_set"].labels)
    np.testing.assert_array_equal(first["validation_set"].samples, second["validation_set"].samples)
    other = split_dataset(digits_raw, processing_params(seed=8))
    assert not np.array_equal(other["validation_set"].samples, first["validation_set"].samples)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda raw: replace(raw, samples=raw.samples[:, 0]), r"images \(N, C, H, W\) or vectors \(N, D\); got shape"),
        (lambda raw: replace(raw, samples=np.full((1797, 2), np.nan, np.float32)), "3594 vector values are NaN"),
        (lambda raw: replace(raw, samples=raw.samples.astype(np.float32)), "must be uint8"),
        (lambda raw: replace(raw, labels=raw.labels[:-5]), "got 1792 labels for 1797 samples"),
        (lambda raw: replace(raw, labels=raw.labels + 1), r"labels must be 0..K-1"),
        (lambda raw: replace(raw, samples=np.zeros_like(raw.samples)), "images are blank"),
        (
            lambda raw: replace(raw, labels=np.where(np.arange(1797) == 0, 10, raw.labels)),
            r"classes \[10\] have fewer than 2",
        ),
    ],
)
def test_malformed_raw_data_is_refused_with_what_is_wrong(digits_raw, change, message):
    with pytest.raises(InvalidDatasetError, match=message):
        validate_raw_dataset(change(digits_raw))


def test_profile_has_counts_and_pixel_statistics_per_split_and_class(digits_raw):
    splits = split_dataset(digits_raw, processing_params())
    profile = profile_splits(splits["train_set"], splits["validation_set"])
    assert set(profile["split"]) == {"train", "validation"}
    totals = profile[profile["class"] == "all"].set_index("split")["count"]
    assert totals.sum() == 1797
    assert profile.query("split == 'train' and `class` != 'all'")["count"].sum() == totals["train"]
    assert profile["pixel_mean"].between(-1, 1).all() and (profile["pixel_std"] > 0).all()


def test_vectors_keep_their_coordinates(digits_raw):
    vectors = np.random.default_rng(0).normal(0, 4, (1797, 2)).astype(np.float64)
    splits = split_dataset(replace(digits_raw, samples=vectors), processing_params())
    train = splits["train_set"].samples
    assert train.dtype == np.float32 and train.shape[1] == 2
    assert np.abs(train).max() > 4  # not squashed into [-1, 1]
