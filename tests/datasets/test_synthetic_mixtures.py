from pathlib import Path

import numpy as np
import pytest

from gan_pipeline.datasets import dataset_source, load_dataset
from gan_pipeline.gan.metrics import KnownModes, mode_collapse_metrics
from gan_pipeline.splits import DatasetRecord
from tests.settings import split_of


def synthetic_modes(name: str) -> tuple[np.ndarray, float]:
    """The modes a mixture's source records with its data."""
    modes = load_dataset(name, {"num_samples": 1}, Path("unused")).modes
    return np.asarray(modes.centres), modes.std


def known(name: str) -> KnownModes:
    return KnownModes(*synthetic_modes(name))


def test_ring8_has_eight_modes_on_the_unit_circle_with_std_one_hundredth() -> None:
    centres, std = synthetic_modes("ring8")

    assert centres.shape == (8, 2)
    np.testing.assert_allclose(np.linalg.norm(centres, axis=1), 1.0)
    np.testing.assert_allclose(np.linalg.norm(centres - np.roll(centres, 1, axis=0), axis=1), 2 * np.sin(np.pi / 8))
    assert std == 0.01


def test_grid25_has_a_five_by_five_grid_from_minus_four_to_four_with_std_five_hundredths() -> None:
    centres, std = synthetic_modes("grid25")

    assert centres.shape == (25, 2)
    assert {tuple(point) for point in centres} == {(x, y) for x in (-4, -2, 0, 2, 4) for y in (-4, -2, 0, 2, 4)}
    assert std == 0.05


@pytest.mark.parametrize("name", ["ring8", "grid25"])
def test_the_modes_travel_exactly_with_the_data_record(name: str) -> None:
    raw = load_dataset(name, {"num_samples": 100}, Path("unused"))
    record = split_of(raw.samples, raw.labels, name, modes=raw.modes).record
    assert DatasetRecord.from_metadata(record.to_metadata(), "test").modes == raw.modes
    assert raw.class_names == tuple(f"mode {index}" for index in range(len(raw.modes.centres)))


@pytest.mark.parametrize("name", ["ring8", "grid25"])
def test_samples_are_seeded_float32_vectors_labelled_by_their_mode(name: str, tmp_path: Path) -> None:
    first = load_dataset(name, {"num_samples": 2000, "seed": 3}, tmp_path)
    again = load_dataset(name, {"num_samples": 2000, "seed": 3}, tmp_path)
    other = load_dataset(name, {"num_samples": 2000, "seed": 4}, tmp_path)
    centres, std = synthetic_modes(name)

    assert first.samples.shape == (2000, 2)
    assert first.samples.dtype == np.float32
    assert first.labels.dtype == np.int64
    np.testing.assert_array_equal(first.samples, again.samples)
    assert not np.array_equal(first.samples, other.samples)
    assert np.abs(first.samples - centres[first.labels]).max() < 6 * std
    assert set(first.labels.tolist()) == set(range(len(centres)))
    assert list(tmp_path.iterdir()) == []


def test_the_default_size_is_fifty_thousand_and_known_before_loading() -> None:
    source = dataset_source("grid25")

    assert source.num_samples(source.options(), Path("unused")) == 50_000
    assert source.num_samples(source.options(num_samples=12), Path("unused")) == 12


@pytest.mark.parametrize("name", ["ring8", "grid25"])
def test_real_samples_cover_every_mode_and_almost_all_are_high_quality(name: str, tmp_path: Path) -> None:
    raw = load_dataset(name, {"num_samples": 20_000}, tmp_path)

    metrics = mode_collapse_metrics(raw.samples, known(name))

    assert metrics["modes_covered"] == metrics["num_modes"] == len(synthetic_modes(name)[0])
    # A 2-D Gaussian puts 1 - exp(-9 / 2) = 98.9 % of its mass within 3 std of its centre.
    assert metrics["high_quality_share"] == pytest.approx(1 - np.exp(-4.5), abs=0.005)


def test_a_generator_collapsed_onto_one_mode_covers_one_mode() -> None:
    centres, std = synthetic_modes("grid25")
    collapsed = np.repeat(centres[7:8], 500, axis=0) + 0.5 * std

    assert mode_collapse_metrics(collapsed, KnownModes(centres, std)) == pytest.approx(
        {"modes_covered": 1.0, "num_modes": 25.0, "high_quality_share": 1.0, "mode_kl": np.log(25)}
    )


def test_samples_between_modes_are_low_quality_and_cover_nothing() -> None:
    centres, std = synthetic_modes("ring8")
    between = np.zeros((100, 2))  # the ring's centre, 1 away from every mode

    metrics = mode_collapse_metrics(between, KnownModes(centres, std))

    assert (metrics["modes_covered"], metrics["high_quality_share"]) == (0.0, 0.0)


def test_a_mode_reached_only_by_low_quality_samples_is_not_covered() -> None:
    centres, std = synthetic_modes("ring8")
    samples = np.stack([centres[0], centres[1] + 4 * std])  # the second is nearest to mode 1 but too far

    metrics = mode_collapse_metrics(samples, KnownModes(centres, std))

    assert (metrics["modes_covered"], metrics["high_quality_share"]) == (1.0, 0.5)


def test_unknown_dataset_names_list_the_known_ones() -> None:
    with pytest.raises(KeyError, match=r"allowed: \[.*'grid25', .*'ring8'.*\]"):
        dataset_source("ring9")


@pytest.mark.parametrize("samples", [np.zeros((5, 3)), np.zeros(5), np.zeros((0, 2))])
def test_metrics_reject_samples_that_are_not_a_non_empty_list_of_points(samples: np.ndarray) -> None:
    with pytest.raises(ValueError, match="non-empty"):
        mode_collapse_metrics(samples, known("ring8"))
