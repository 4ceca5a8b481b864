"""Paths through latent space, for interpolation strips."""

import torch
import torch.nn.functional as F


def slerp(start: torch.Tensor, end: torch.Tensor, fractions: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation (White, 2016): ``(D,)``, ``(D,)``, ``(S,)`` -> ``(S, D)``.

    Gaussian latents concentrate near a sphere; a straight line between two of them dips through
    low-norm latents the generator never saw, a great-circle path does not.
    """
    fractions = fractions[:, None]
    angle = torch.arccos((F.normalize(start, dim=0) @ F.normalize(end, dim=0)).clamp(-1, 1))
    if angle.abs() < 1e-6:  # (anti)parallel: the sphere formula divides by sin(0)
        return torch.lerp(start, end, fractions)
    return (torch.sin((1 - fractions) * angle) * start + torch.sin(fractions * angle) * end) / torch.sin(angle)


def interpolation_latents(rows: int, steps: int, latent_dim: int, rng: torch.Generator) -> torch.Tensor:
    """``rows`` great-circle paths of ``steps`` latents each between random endpoints: ``(rows * steps, D)``."""
    endpoints = torch.randn(rows, 2, latent_dim, generator=rng, device=rng.device)
    fractions = torch.linspace(0, 1, steps, device=rng.device)
    return torch.cat([slerp(start, end, fractions) for start, end in endpoints])
