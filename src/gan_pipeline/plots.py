"""Figures for people: sample grids and loss curves.

Built with matplotlib's object API (``Figure``), so no global pyplot state or backend switch
is needed inside nodes.
"""

import pandas as pd
import torch
from matplotlib.figure import Figure

from gan_pipeline.gan.images import make_grid


def sample_grid_figure(images: torch.Tensor, title: str) -> Figure:
    figure = Figure(figsize=(6, 6))
    axes = figure.add_subplot()
    grid = make_grid(images)
    axes.imshow(grid, cmap="gray" if grid.ndim == 2 else None, interpolation="nearest")
    axes.set_title(title)
    axes.axis("off")
    return figure


def training_progress_figure(snapshots: list[tuple[int, torch.Tensor]]) -> Figure:
    """Fixed-noise samples at each snapshot epoch, left to right: the same latents every time."""
    figure = Figure(figsize=(3 * len(snapshots), 3.4))
    for index, (epoch, images) in enumerate(snapshots, start=1):
        axes = figure.add_subplot(1, len(snapshots), index)
        grid = make_grid(images)
        axes.imshow(grid, cmap="gray" if grid.ndim == 2 else None, interpolation="nearest")
        axes.set_title(f"epoch {epoch}")
        axes.axis("off")
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
