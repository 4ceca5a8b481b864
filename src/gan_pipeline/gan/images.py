"""Image grids without torchvision: tile a batch into one picture."""

import math

import numpy as np
import torch


def to_uint8(images: torch.Tensor) -> np.ndarray:
    """Images in [-1, 1] -> uint8 in [0, 255], same shape."""
    return ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).numpy()


def make_grid(images: torch.Tensor, columns: int | None = None, padding: int = 1) -> np.ndarray:
    """Tile ``(N, C, H, W)`` images in [-1, 1] into one ``(rows*H, columns*W)`` (or ``..., C``) uint8 array."""
    count, channels, height, width = images.shape
    columns = columns or math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    cell_h, cell_w = height + padding, width + padding
    grid = np.zeros((channels, rows * cell_h + padding, columns * cell_w + padding), dtype=np.uint8)
    for index, image in enumerate(to_uint8(images)):
        top, left = (index // columns) * cell_h + padding, (index % columns) * cell_w + padding
        grid[:, top : top + height, left : left + width] = image
    return grid[0] if channels == 1 else grid.transpose(1, 2, 0)
