"""DiffAugment (Zhao et al. 2020): the same random, differentiable augmentations on real and fake
images before D sees them, so D cannot memorise a small training set.

Follows the authors' reference implementation (``DiffAugment_pytorch.py``): per-sample colour
jitter, translation by up to 1/8 of the image with zero padding, and a cutout square of half the
image side. Images only: vectors have no pixels to shift.
"""

from collections.abc import Callable

import torch
import torch.nn.functional as F

Augmentation = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def _per_sample(images: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """One uniform [0, 1) draw per image, shaped to broadcast over (C, H, W)."""
    return torch.rand(images.shape[0], 1, 1, 1, generator=rng, device=images.device, dtype=images.dtype)


def random_colour(images: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """Brightness +-0.5, saturation x[0, 2), contrast x[0.5, 1.5)."""
    images = images + (_per_sample(images, rng) - 0.5)
    channel_mean = images.mean(dim=1, keepdim=True)
    images = (images - channel_mean) * (_per_sample(images, rng) * 2) + channel_mean
    image_mean = images.mean(dim=(1, 2, 3), keepdim=True)
    return (images - image_mean) * (_per_sample(images, rng) + 0.5) + image_mean


def random_translation(images: torch.Tensor, rng: torch.Generator, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by up to ``ratio`` of its size; uncovered pixels become 0."""
    count, _, height, width = images.shape
    max_dy, max_dx = int(height * ratio + 0.5), int(width * ratio + 0.5)
    device = images.device
    dy = torch.randint(-max_dy, max_dy + 1, (count, 1, 1), generator=rng, device=device)
    dx = torch.randint(-max_dx, max_dx + 1, (count, 1, 1), generator=rng, device=device)
    rows = (torch.arange(height, device=device).view(1, -1, 1) + dy + 1).clamp(0, height + 1)  # (N, H, 1)
    cols = (torch.arange(width, device=device).view(1, 1, -1) + dx + 1).clamp(0, width + 1)  # (N, 1, W)
    batch = torch.arange(count, device=device).view(-1, 1, 1)
    padded = F.pad(images, (1, 1, 1, 1)).permute(0, 2, 3, 1)  # (N, H+2, W+2, C)
    return padded[batch, rows, cols].permute(0, 3, 1, 2)  # (N, C, H, W)


def random_cutout(images: torch.Tensor, rng: torch.Generator, ratio: float = 0.5) -> torch.Tensor:
    """Zero one square of ``ratio`` times the image side per image, at a random centre."""
    count, _, height, width = images.shape
    cut_h, cut_w = int(height * ratio + 0.5), int(width * ratio + 0.5)
    device = images.device
    top = torch.randint(0, height + (1 - cut_h % 2), (count, 1, 1), generator=rng, device=device) - cut_h // 2
    left = torch.randint(0, width + (1 - cut_w % 2), (count, 1, 1), generator=rng, device=device) - cut_w // 2
    rows = torch.arange(height, device=device).view(1, -1, 1)
    cols = torch.arange(width, device=device).view(1, 1, -1)
    inside = (rows >= top) & (rows < top + cut_h) & (cols >= left) & (cols < left + cut_w)  # (N, H, W)
    return images * (~inside).unsqueeze(1).to(images.dtype)


AUGMENTATIONS: dict[str, Augmentation] = {
    "color": random_colour,
    "translation": random_translation,
    "cutout": random_cutout,
}


def diff_augment(images: torch.Tensor, names: tuple[str, ...], rng: torch.Generator) -> torch.Tensor:
    """Apply the named augmentations in order; every step is differentiable w.r.t. ``images``."""
    for name in names:
        images = AUGMENTATIONS[name](images, rng)
    return images
