"""The training benchmark stays runnable: importable without Kedro or MLflow, both loops train."""

import subprocess
import sys
from pathlib import Path

import torch

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

from train_throughput import ARCH, Measurement, ProjectLoop, ReferenceLoop, paired_ratio  # noqa: E402

from gan_pipeline.gan.runtime import SpeedSettings  # noqa: E402


def test_the_benchmark_imports_neither_kedro_nor_mlflow():
    check = (
        f"import sys; sys.path.insert(0, {str(BENCHMARKS)!r}); import train_throughput; "
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('kedro', 'mlflow', 'kedro_mlflow')); "
        "assert not loaded, loaded"
    )
    result = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-2000:]


def test_both_loops_train_the_same_network_on_the_same_batches():
    images = torch.rand(32, *ARCH.image_shape) * 2 - 1
    reference = ReferenceLoop(images, 8, torch.device("cpu"), read_every_step=True)
    project = ProjectLoop(images, 8, torch.device("cpu"), SpeedSettings())
    before = [p.clone() for p in project.trainer.state.generator.parameters()]
    assert reference.train_epoch() == project.train_epoch() == 32
    assert project.trainer.state.step == 4
    assert any(not torch.equal(a, b) for a, b in zip(before, project.trainer.state.generator.parameters(), strict=True))
    assert sum(p.numel() for p in reference.generator.parameters()) == sum(
        p.numel() for p in project.trainer.state.generator.parameters()
    )


def test_the_ratio_pairs_epochs_timed_back_to_back():
    reference = Measurement("reference", [1.0, 2.0, 1.0], images=100)
    project = Measurement("project", [0.5, 1.0, 2.0], images=100)  # 2x, 2x, then 0.5x under a load spike
    assert paired_ratio(project, reference) == 2.0
