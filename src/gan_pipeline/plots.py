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


def class_histogram_figure(generated_shares: torch.Tensor, real_shares: torch.Tensor) -> Figure:
    """Share of each class among generated samples (judge's call) next to the real validation split."""
    figure = Figure(figsize=(max(6, 0.6 * len(real_shares)), 3.5))
    axes = figure.add_subplot()
    classes = torch.arange(len(real_shares)).numpy()
    width = 0.4
    axes.bar(classes - width / 2, real_shares.numpy(), width, label="real (validation labels)")
    axes.bar(classes + width / 2, generated_shares.numpy(), width, label="generated (judge's class)")
    axes.set(xlabel="class", ylabel="share of samples", title="Class histogram", xticks=classes)
    axes.legend()
    figure.tight_layout()
    return figure


def mode_counts_figure(generated_modes: np.ndarray, real_modes: np.ndarray, num_modes: int) -> Figure:
    """Samples per mode, modes sorted from most to least hit: a flat line at the uniform count is no collapse;
    a steep fall to zero shows how many modes are over-produced and how many are missed."""
    figure = Figure(figsize=(7, 3.5))
    axes = figure.add_subplot()
    for modes, label in ((real_modes, "real (training samples)"), (generated_modes, "generated")):
        counts = np.sort(np.bincount(modes, minlength=num_modes))[::-1]
        axes.plot(np.arange(1, num_modes + 1), counts, label=f"{label}: {int((counts > 0).sum())} modes hit")
    axes.axhline(len(generated_modes) / num_modes, color="grey", linestyle=":", label="uniform")
    axes.set(xlabel="mode, by rank", ylabel="samples", title=f"Samples per mode (of {num_modes})")
    axes.legend()
    figure.tight_layout()
    return figure


def interpolation_strip_figure(images: torch.Tensor, steps: int) -> Figure:
    """One row per latent path, left to right from one endpoint to the other."""
    rows = len(images) // steps
    figure = Figure(figsize=(0.8 * steps, 0.8 * rows + 0.6))
    axes = figure.add_subplot()
    grid = make_grid(images, columns=steps)
    axes.imshow(grid, cmap="gray" if grid.ndim == 2 else None, interpolation="nearest")
    axes.set_title("Latent interpolation (spherical)")
    axes.axis("off")
    return figure


def nearest_neighbours_figure(generated: torch.Tensor, neighbours: torch.Tensor, distances: torch.Tensor) -> Figure:
    """Each row: a generated image, then its nearest training images with their pixel distances.

    Rows are the generated samples closest to the training set: copies would show up here first.
    """
    rows, k = distances.shape
    figure = Figure(figsize=(1.2 * (k + 1), 1.3 * rows + 0.5))
    grayscale = generated.shape[1] == 1
    for row in range(rows):
        cells = [
            (generated[row], "generated"),
            *((neighbours[row, col], f"d={distances[row, col]:.2f}") for col in range(k)),
        ]
        for col, (image, label) in enumerate(cells):
            axes = figure.add_subplot(rows, k + 1, row * (k + 1) + col + 1)
            picture = make_grid(image[None], padding=0)
            axes.imshow(picture, cmap="gray" if grayscale else None, interpolation="nearest", vmin=0, vmax=255)
            axes.set_title(label, fontsize=7)
            axes.axis("off")
    figure.suptitle("Nearest training images of the generated samples closest to the training set", fontsize=9)
    figure.tight_layout()
    return figure


def note_figure(text: str) -> Figure:
    """A figure that only says why there is nothing to draw, so every run has the same artifacts."""
    figure = Figure(figsize=(6, 1.2))
    figure.text(0.5, 0.5, text, ha="center", va="center")
    return figure
