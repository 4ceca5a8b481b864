"""Figures for people: sample grids and loss curves.

Built with matplotlib's object API (``Figure``), so no global pyplot state or backend switch
is needed inside nodes.
"""

import numpy as np
import pandas as pd
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from gan_pipeline.gan.images import make_grid


def draw_samples(axes: Axes, samples: torch.Tensor, modes: np.ndarray | None = None) -> None:
    """Images as a grid; 2-D vectors as a scatter (with the true modes, when known)."""
    if samples.ndim == 4:
        grid = make_grid(samples)
        axes.imshow(grid, cmap="gray" if grid.ndim == 2 else None, interpolation="nearest")
        axes.axis("off")
        return
    points = samples.detach().cpu().numpy()
    axes.scatter(points[:, 0], points[:, 1], s=2, alpha=0.5, label="generated")
    if modes is not None:
        axes.scatter(modes[:, 0], modes[:, 1], marker="x", color="red", s=30, label="modes")
        axes.legend(loc="upper right", fontsize="small")
    axes.set_aspect("equal")


def sample_grid_figure(samples: torch.Tensor, title: str, modes: np.ndarray | None = None) -> Figure:
    figure = Figure(figsize=(6, 6))
    axes = figure.add_subplot()
    draw_samples(axes, samples, modes)
    axes.set_title(title)
    return figure


def training_progress_figure(snapshots: list[tuple[int, torch.Tensor]]) -> Figure:
    """Fixed-noise samples at each snapshot epoch, left to right: the same latents every time."""
    figure = Figure(figsize=(3 * len(snapshots), 3.4))
    for index, (epoch, samples) in enumerate(snapshots, start=1):
        axes = figure.add_subplot(1, len(snapshots), index)
        draw_samples(axes, samples)
        axes.set_title(f"epoch {epoch}")
    return figure


def loss_curves_figure(history: pd.DataFrame) -> Figure:
    figure = Figure(figsize=(9, 3.5))
    losses, scores = figure.subplots(1, 2)
    losses.plot(history["step"], history["d_loss"], label="discriminator")
    losses.plot(history["step"], history["g_loss"], label="generator")
    losses.set(xlabel="step", ylabel="loss", title="Adversarial losses")
    losses.legend()
    scores.plot(history["step"], history["d_real"], label="D(x)")
    scores.plot(history["step"], history["d_fake"], label="D(G(z))")
    scores.set(xlabel="step", ylabel="mean probability", title="Discriminator outputs", ylim=(0, 1))
    scores.legend()
    figure.tight_layout()
    return figure
