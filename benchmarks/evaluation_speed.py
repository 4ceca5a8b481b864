"""Evaluation speed: 10,000 generated 28x28 images against 10,000 real ones, time per metric.

Real images are MNIST's t10k set from ``--mnist-dir`` (synthetic blobs when it is absent); the
generator is the article's 28x28 DCGAN preset and the judge is trained for ``--judge-epochs``
on the real images (setup, not evaluation: the pipeline reuses a judge while its inputs are
unchanged). The same real images stand in for the training split, so values such as
``frechet_distance_real_floor`` are degenerate; only the times matter. Prints the wall time of
generation, of the judge's passes over the three image sets, of each metric of the registry
and of the evaluation figures, then the total against the 60 s target.

    .venv/bin/python benchmarks/evaluation_speed.py [--mnist-dir ../shared/datasets/mnist] [--threads 2]
"""

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from gan_pipeline.datasets.idx import IMAGES_MAGIC, LABELS_MAGIC, read_idx
from gan_pipeline.gan.judge import train_judge
from gan_pipeline.gan.latent import interpolation_latents
from gan_pipeline.gan.metrics import IMAGE_METRICS, METRICS, MetricInputs, class_histograms, nearest_neighbours
from gan_pipeline.gan.networks import build_networks
from gan_pipeline.gan.presets import PRESETS
from gan_pipeline.gan.settings import JudgeSettings, ScoringSettings
from gan_pipeline.gan.training import sample_images
from gan_pipeline.plots import class_histogram_figure, interpolation_strip_figure, nearest_neighbours_figure

TARGET_SECONDS = 60.0
DEFAULT_MNIST_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "datasets" / "mnist"


def real_images(mnist_dir: Path, count: int) -> tuple[torch.Tensor, torch.Tensor, str]:
    """``count`` real images in [-1, 1] with labels: MNIST t10k when present, else seeded synthetic blobs."""
    images_file, labels_file = mnist_dir / "t10k-images-idx3-ubyte.gz", mnist_dir / "t10k-labels-idx1-ubyte.gz"
    if images_file.is_file() and labels_file.is_file():
        images = read_idx(images_file, IMAGES_MAGIC)[:count]
        labels = read_idx(labels_file, LABELS_MAGIC)[:count]
        source = f"MNIST t10k from {mnist_dir}"
    else:
        rng = np.random.default_rng(0)
        labels = rng.integers(0, 10, count)
        grid = np.mgrid[:28, :28]
        centres = np.stack([6 + 2 * (labels % 5) + 4, 8 + 6 * (labels // 5)], axis=1)
        images = np.exp(-((grid[None] - centres[:, :, None, None]) ** 2).sum(1) / 18) * 255
        source = "synthetic blobs (no MNIST files found)"
    scaled = torch.from_numpy(np.asarray(images, dtype=np.float32)[:, None] / 127.5 - 1)
    return scaled, torch.from_numpy(np.asarray(labels, dtype=np.int64)), source


def timed(label: str, times: dict[str, float], action: Callable[[], Any]) -> Any:
    """Run ``action``; print its wall and CPU seconds (CPU time shows the work when other jobs share the cores)."""
    started, cpu_started = time.perf_counter(), time.process_time()
    result = action()
    times[label] = time.perf_counter() - started
    print(f"  {label:<48} {times[label]:7.2f} s wall {time.process_time() - cpu_started:7.2f} s CPU", flush=True)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mnist-dir", type=Path, default=DEFAULT_MNIST_DIR)
    parser.add_argument("--num", type=int, default=10_000, help="generated and real images (each)")
    parser.add_argument("--judge-epochs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    real, labels, source = real_images(args.mnist_dir, args.num)
    print(f"{len(real)} real images: {source}; torch {torch.__version__}, {args.threads} threads")
    print(f"load average at start: {' '.join(f'{load:.1f}' for load in os.getloadavg())} on {os.cpu_count()} CPUs")
    setup: dict[str, float] = {}
    judge_settings = JudgeSettings("classes", args.judge_epochs, 128, 1e-3, feature_dim=64, seed=0, progress_bar=False)
    judge = timed(
        f"setup: judge training ({args.judge_epochs} epoch)",
        setup,
        lambda: train_judge(real, labels, 10, judge_settings),
    )
    generator, _ = build_networks(PRESETS["article_dcgan"])
    generator.eval()

    times: dict[str, float] = {}
    rng = torch.Generator().manual_seed(1234)
    latent = torch.randn(args.num, generator.arch.latent_dim, generator=rng)
    generated = timed(
        f"generate {args.num} images (article_dcgan)",
        times,
        lambda: torch.cat([sample_images(generator, chunk) for chunk in latent.split(1024)]),
    )
    scoring = ScoringSettings(
        confidence_threshold=0.9,
        nearest_k=5,
        precision_recall_samples=10_000,
        inception_score_splits=10,
        memorisation_samples=2000,
        seed=1234,
        progress_bar=False,
    )
    inputs = MetricInputs(judge, real, real, labels, generated, scoring)
    for name in ("train_outputs", "validation_outputs", "generated_outputs"):
        timed(f"judge pass: {name.removesuffix('_outputs')}", times, lambda name=name: getattr(inputs, name))
    metrics: dict[str, float] = {}
    for name in IMAGE_METRICS:
        metrics.update(timed(f"metric: {name}", times, lambda metric=METRICS[name]: metric(inputs)))

    def figures() -> None:
        class_histogram_figure(*class_histograms(inputs))
        paths = interpolation_latents(6, 10, generator.arch.latent_dim, rng)
        interpolation_strip_figure(sample_images(generator, paths), 10)
        suspects = inputs.generated[inputs.generated_to_train[0].argsort()[:8]]
        distances, indices = nearest_neighbours(suspects, inputs.real_train, k=5)
        nearest_neighbours_figure(suspects, inputs.real_train[indices], distances)

    timed("figures (histogram, interpolation, neighbours)", times, figures)
    total = sum(times.values())
    verdict = "met" if total < TARGET_SECONDS else "MISSED"
    label = "total evaluation (generation included)"
    print(f"  {label:<48} {total:7.2f} s wall (target < {TARGET_SECONDS:g} s: {verdict})")
    print("values (untrained generator): " + ", ".join(f"{k}={v:.4g}" for k, v in sorted(metrics.items())))
    return 0 if total < TARGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
