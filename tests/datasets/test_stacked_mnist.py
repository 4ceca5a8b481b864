"""Stacked MNIST from the real t10k files: three digits per image, every one of the 1,000 modes alike often."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from gan_pipeline.config.ingestion import IngestionParams
from gan_pipeline.datasets import dataset_source, load_dataset
from gan_pipeline.datasets.mnist_family import TEST_IMAGES
from gan_pipeline.datasets.stacked_mnist import mode_digits
from gan_pipeline.pipelines.data_ingestion.nodes import ingest_dataset
from tests.settings import split_of


def t10k(mnist_dir: Path, **options) -> dict:
    return {"splits": ["test"], "local_dir": mnist_dir, "num_samples": 5000, "progress_bar": False, **options}


@pytest.fixture(scope="module")
def stacked(mnist_dir, tmp_path_factory):
    return load_dataset("stacked_mnist", t10k(mnist_dir), tmp_path_factory.mktemp("raw"))


@pytest.fixture(scope="module")
def t10k_digits(mnist_dir, tmp_path_factory):
    return load_dataset("mnist", {"splits": ["test"], "local_dir": mnist_dir}, tmp_path_factory.mktemp("raw"))


def test_each_image_stacks_three_real_digits_whose_classes_make_its_label(stacked, t10k_digits):
    assert stacked.samples.shape == (5000, 3, 28, 28) and stacked.samples.dtype == np.uint8
    assert stacked.class_names[:2] == ("000", "001") and len(stacked.class_names) == 1000
    assert stacked.channel_classes == tuple("0123456789")
    label_of = {
        image.tobytes(): label for image, label in zip(t10k_digits.samples[:, 0], t10k_digits.labels, strict=True)
    }
    digits = mode_digits(stacked.labels)
    for sample, expected in zip(stacked.samples[:300], digits[:300], strict=True):
        assert [label_of[channel.tobytes()] for channel in sample] == expected.tolist()  # each channel: a t10k digit


def test_every_mode_is_drawn_equally_often_and_the_draw_follows_its_seed(stacked, mnist_dir, tmp_path):
    assert np.bincount(stacked.labels, minlength=1000).tolist() == [5] * 1000
    again = load_dataset("stacked_mnist", t10k(mnist_dir), tmp_path)
    other = load_dataset("stacked_mnist", t10k(mnist_dir, seed=1), tmp_path)
    assert np.array_equal(again.samples, stacked.samples) and np.array_equal(again.labels, stacked.labels)
    assert not np.array_equal(other.samples, stacked.samples)


def test_the_record_keeps_what_each_channel_shows_through_the_split_file(stacked):
    split = split_of(stacked.samples, stacked.labels, "stacked_mnist")
    record = replace(split.record, channel_classes=stacked.channel_classes)
    restored = record.from_metadata(record.to_metadata(), "train_set.safetensors")
    assert restored.channel_classes == tuple("0123456789") and restored.class_names == record.class_names


def test_ingestion_records_the_digits_files_and_the_draw(mnist_dir, tmp_path):
    params = IngestionParams.model_validate(
        {"dataset": "stacked_mnist", "raw_dir": str(tmp_path), "sources": {"stacked_mnist": t10k(mnist_dir)}}
    )
    ingested = ingest_dataset(params)
    record, card = ingested["raw_dataset"].record, ingested["dataset_card"].set_index("field")["value"]
    assert record.channel_classes == tuple("0123456789") and record.sample_shape == (3, 28, 28)
    assert card["num_modes"] == "1000" and card["digit_source"] == "mnist" and card["num_digits"] == "10000"
    assert any(field.startswith(TEST_IMAGES) for field in card.index)  # the digits file's checksum


def test_fewer_than_five_triplets_per_mode_are_refused_with_the_option(mnist_dir, tmp_path):
    with pytest.raises(ValidationError, match=r"num_samples\n.*greater than or equal to 5000"):
        load_dataset("stacked_mnist", t10k(mnist_dir, num_samples=4999), tmp_path)
    source = dataset_source("stacked_mnist")
    options = source.options.model_validate(t10k(mnist_dir))
    assert source.num_samples(options, tmp_path) == 5000 and source.sample_shape(options, tmp_path) == (3, 28, 28)


def test_a_missing_digits_file_names_the_stacked_sources_option(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"data_ingestion\.sources\.stacked_mnist\.local_dir"):
        load_dataset("stacked_mnist", {"splits": ["test"], "local_dir": tmp_path}, tmp_path)
