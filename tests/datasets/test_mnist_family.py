import shutil
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

from gan_pipeline.datasets import dataset_source, load_dataset
from gan_pipeline.datasets.idx import IdxFormatError
from gan_pipeline.datasets.mnist_family import RELEASES, TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS
from gan_pipeline.download import ChecksumError, DownloadError, file_digests

TEST_FILES = [TEST_IMAGES, TEST_LABELS]


def over_http(mirror, **options) -> dict:
    """Options that ingest the test split from the loopback mirror with the published checksums."""
    return {"splits": ["test"], "mirrors": [mirror.url("ok")], "backoff_s": 0.01, "timeout_s": 5, **options}


def sha256_of(path: Path) -> str:
    return "sha256:" + file_digests(path)["sha256"]


def test_the_mnist_test_split_is_ingested_through_the_http_mirror(mirror, tmp_path, t10k_class_counts) -> None:
    raw = load_dataset("mnist", over_http(mirror), tmp_path)

    assert raw.samples.shape == (10_000, 1, 28, 28)
    assert raw.samples.dtype == np.uint8
    assert raw.labels.dtype == np.int64
    assert np.bincount(raw.labels).tolist() == t10k_class_counts
    assert sorted(path.name for path in (tmp_path / "mnist").iterdir()) == sorted(TEST_FILES)
    assert raw.card["source"] == "mnist"
    assert raw.card["splits"] == "test"
    assert raw.card["num_test"] == 10_000
    assert raw.card[f"{TEST_IMAGES}.md5"] == "9fb629c4189551a2d022fa330f9573f3"
    assert "sha256:" + str(raw.card[f"{TEST_IMAGES}.sha256"]) == RELEASES["mnist"].checksums[TEST_IMAGES]


def test_a_second_ingestion_downloads_nothing(mirror, tmp_path) -> None:
    first = load_dataset("mnist", over_http(mirror), tmp_path)
    requests_after_first = mirror.count("ok")
    second = load_dataset("mnist", over_http(mirror), tmp_path)

    assert requests_after_first == 2
    assert mirror.count("ok") == 2
    np.testing.assert_array_equal(first.samples, second.samples)
    assert first.card == second.card


def test_the_published_checksums_match_the_shared_mnist_files(mnist_dir, published_sha256) -> None:
    shipped = RELEASES["mnist"].checksums
    for name, digest in published_sha256.items():
        assert shipped[name] == f"sha256:{digest}"


def test_local_dir_is_verified_and_read_in_place_without_downloading(mnist_dir, tmp_path) -> None:
    raw = load_dataset("mnist", {"splits": ["test"], "local_dir": str(mnist_dir)}, tmp_path)

    assert len(raw.labels) == 10_000
    assert raw.card["origin"] == str(mnist_dir)
    assert list(tmp_path.iterdir()) == []


def test_splits_are_concatenated_in_the_order_listed(tmp_path, write_idx) -> None:
    write_idx(tmp_path / TRAIN_IMAGES, np.full((3, 2, 2), 7, np.uint8))
    write_idx(tmp_path / TRAIN_LABELS, np.array([1, 1, 1], np.uint8))
    write_idx(tmp_path / TEST_IMAGES, np.full((2, 2, 2), 9, np.uint8))
    write_idx(tmp_path / TEST_LABELS, np.array([2, 2], np.uint8))
    checksums = {name: sha256_of(tmp_path / name) for name in [TRAIN_IMAGES, TRAIN_LABELS, *TEST_FILES]}

    raw = load_dataset("kmnist", {"splits": ["test", "train"], "local_dir": tmp_path, "checksums": checksums}, tmp_path)

    assert raw.samples.shape == (5, 1, 2, 2)
    assert raw.labels.tolist() == [2, 2, 1, 1, 1]
    assert (raw.card["num_test"], raw.card["num_train"]) == (2, 3)


def test_a_checksum_mismatch_names_the_file_both_digests_and_the_option_to_fix(mnist_dir, tmp_path) -> None:
    checksums = {TEST_IMAGES: "md5:" + "0" * 32, TEST_LABELS: "md5:ec29112dd5afa0611ce80d1b7f02629c"}
    options = {"splits": ["test"], "local_dir": mnist_dir, "checksums": checksums}

    with pytest.raises(ChecksumError, match=f"{TEST_IMAGES}: expected md5:0{{32}}, got md5:9fb629c4") as error:
        load_dataset("mnist", options, tmp_path)
    assert f"data_ingestion.sources.mnist.checksums['{TEST_IMAGES}']" in str(error.value)


def test_image_and_label_counts_that_differ_are_an_error(mnist_dir, tmp_path) -> None:
    shutil.copy(mnist_dir / TEST_IMAGES, tmp_path / TEST_IMAGES)
    shutil.copy(mnist_dir / TRAIN_LABELS, tmp_path / TEST_LABELS)  # 60,000 labels beside 10,000 images
    checksums = {name: sha256_of(tmp_path / name) for name in TEST_FILES}

    with pytest.raises(IdxFormatError, match=r"holds 10000 images but \S+ holds 60000 labels"):
        load_dataset("mnist", {"splits": ["test"], "local_dir": tmp_path, "checksums": checksums}, tmp_path)


def test_a_truncated_gzip_that_matches_its_configured_checksum_fails_in_the_parser(mnist_dir, tmp_path) -> None:
    whole = (mnist_dir / TEST_IMAGES).read_bytes()
    (tmp_path / TEST_IMAGES).write_bytes(whole[:100_000])
    shutil.copy(mnist_dir / TEST_LABELS, tmp_path / TEST_LABELS)
    checksums = {name: sha256_of(tmp_path / name) for name in TEST_FILES}

    with pytest.raises(IdxFormatError, match="truncated or damaged"):
        load_dataset("fashion_mnist", {"splits": ["test"], "local_dir": tmp_path, "checksums": checksums}, tmp_path)


def test_swapped_images_and_labels_files_are_caught_by_the_magic_number(mnist_dir, tmp_path) -> None:
    shutil.copy(mnist_dir / TEST_LABELS, tmp_path / TEST_IMAGES)
    shutil.copy(mnist_dir / TEST_IMAGES, tmp_path / TEST_LABELS)
    checksums = {name: sha256_of(tmp_path / name) for name in TEST_FILES}

    with pytest.raises(IdxFormatError, match="magic number 0x00000801"):
        load_dataset("mnist", {"splits": ["test"], "local_dir": tmp_path, "checksums": checksums}, tmp_path)


def test_a_file_missing_from_local_dir_names_the_options_to_change(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match=r"data_ingestion\.sources\.mnist\.local_dir"):
        load_dataset("mnist", {"splits": ["test"], "local_dir": tmp_path}, tmp_path)


def test_when_no_mirror_answers_the_error_names_them_and_the_options_to_change(mirror, tmp_path) -> None:
    options = over_http(mirror, mirrors=[mirror.url("404"), mirror.url("500")], attempts=1)

    with pytest.raises(DownloadError) as error:
        load_dataset("mnist", options, tmp_path)

    message = str(error.value)
    assert "HTTP 404" in message
    assert "HTTP 500" in message
    assert "data_ingestion.sources.mnist.mirrors" in message
    assert "data_ingestion.sources.mnist.local_dir" in message


def test_options_without_a_checksum_for_a_chosen_file_are_rejected() -> None:
    with pytest.raises(ValidationError, match=r"checksums has no entry for \['t10k-labels-idx1-ubyte.gz'\]"):
        dataset_source("mnist").options.model_validate(
            {"splits": ["test"], "checksums": {TEST_IMAGES: "md5:" + "0" * 32}}
        )


@pytest.mark.parametrize("bad", [{"splits": []}, {"splits": ["test", "test"]}, {"splits": ["valid"]}, {"mirrors": []}])
def test_bad_split_and_mirror_lists_are_rejected(bad: dict) -> None:
    with pytest.raises(ValidationError):
        dataset_source("mnist").options.model_validate(bad)


@pytest.mark.parametrize("dataset", ["mnist", "fashion_mnist", "kmnist"])
def test_each_release_ships_its_own_mirrors_and_a_checksum_for_every_file(dataset: str) -> None:
    options = dataset_source(dataset).options()

    assert options.mirrors == RELEASES[dataset].mirrors
    assert set(options.checksums) == {TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS}
    assert options.splits == ("train", "test")


def test_the_sample_count_is_known_before_loading_only_for_the_published_files() -> None:
    source = dataset_source("fashion_mnist")
    published = source.options()
    custom = source.options(splits=["test"], checksums={name: "md5:" + "0" * 32 for name in TEST_FILES})

    assert source.num_samples(published, Path("unused")) == 70_000
    assert source.num_samples(source.options(splits=["test"]), Path("unused")) == 10_000
    assert source.num_samples(custom, Path("unused")) is None
