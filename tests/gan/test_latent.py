import torch

from gan_pipeline.gan.latent import interpolation_latents, slerp


def test_slerp_starts_and_ends_at_the_endpoints_and_keeps_the_norm_between_equal_norm_ends():
    rng = torch.Generator().manual_seed(0)
    start = torch.randn(64, generator=rng)
    end = torch.randn(64, generator=rng)
    end = end / end.norm() * start.norm()
    path = slerp(start, end, torch.linspace(0, 1, 7))
    assert torch.allclose(path[0], start, atol=1e-5) and torch.allclose(path[-1], end, atol=1e-5)
    assert torch.allclose(path.norm(dim=1), start.norm().expand(7), rtol=1e-4)


def test_slerp_of_parallel_vectors_falls_back_to_a_straight_line():
    start = torch.ones(8)
    path = slerp(start, 3 * start, torch.tensor([0.0, 0.5, 1.0]))
    assert torch.allclose(path, torch.stack([start, 2 * start, 3 * start]))


def test_interpolation_latents_are_rows_of_paths_reproducible_by_seed():
    first = interpolation_latents(3, 5, 16, torch.Generator().manual_seed(1))
    assert first.shape == (15, 16)
    assert torch.equal(first, interpolation_latents(3, 5, 16, torch.Generator().manual_seed(1)))
