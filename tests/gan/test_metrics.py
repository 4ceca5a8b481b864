import pytest
import torch

from gan_pipeline.config import JudgeParams
from gan_pipeline.gan.judge import train_judge
from gan_pipeline.gan.metrics import METRICS, MetricInputs, compute_metrics, frechet_distance
from tests.conftest import scaled


@pytest.fixture(scope="module")
def judged(digits_raw):
    images, labels = scaled(digits_raw["samples"]), torch.from_numpy(digits_raw["labels"])
    torch.manual_seed(0)
    order = torch.randperm(len(images))
    train, val = order[:1400], order[1400:]
    judge = train_judge(images[train], labels[train], 10, JudgeParams(epochs=8))
    return judge, images[train], labels[train], images[val], labels[val]


def test_the_judge_learns_to_read_digits(judged):
    judge, train, _, val, val_labels = judged
    accuracy = compute_metrics(["judge_accuracy"], MetricInputs(judge, train, val, val_labels, val))
    assert accuracy["judge_val_accuracy"] > 0.9


def test_frechet_distance_is_zero_for_identical_sets_and_grows_with_noise(judged):
    judge, train, _, val, _ = judged
    assert frechet_distance(judge, val, val) == pytest.approx(0, abs=1e-3)
    noisy = (val + 0.5 * torch.randn_like(val)).clamp(-1, 1)
    assert frechet_distance(judge, val, noisy) > frechet_distance(judge, val, train)


def test_real_data_covers_every_class_and_a_single_class_collapses(judged):
    judge, train, train_labels, val, val_labels = judged
    real = compute_metrics(["mode_coverage"], MetricInputs(judge, train, val, val_labels, train))
    assert real["classes_covered"] == 10 and real["class_kl_divergence"] < 0.05
    only_sevens = train[train_labels == 7]
    collapsed = compute_metrics(["mode_coverage"], MetricInputs(judge, train, val, val_labels, only_sevens))
    assert collapsed["classes_covered"] <= 2
    assert collapsed["class_kl_divergence"] > 1.5  # log(10) = 2.3 for a perfect collapse


def test_every_metric_returns_flat_floats(judged):
    judge, train, _, val, val_labels = judged
    results = compute_metrics(list(METRICS), MetricInputs(judge, train, val, val_labels, train[:300]))
    assert results and all(isinstance(value, float) for value in results.values())
    assert results["frechet_distance_ratio"] == pytest.approx(
        results["frechet_distance"] / results["frechet_distance_real_floor"]
    )
