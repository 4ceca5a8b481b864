import pytest
import torch

from gan_pipeline.config import TrainingParams
from gan_pipeline.gan.networks import PRESETS, build_networks
from gan_pipeline.gan.runtime import seeded_generator
from gan_pipeline.gan.training import train_gan
from tests.conftest import TINY_TRAINING, scaled


@pytest.fixture
def real(digits_raw):
    return scaled(digits_raw["samples"][:256])


def _train(real, seed=0, **overrides):
    config = TrainingParams(**{**TINY_TRAINING, "seed": seed, **overrides})
    rng = seeded_generator(config.seed, torch.device("cpu"))
    generator, discriminator = build_networks(PRESETS["digits_dcgan"])
    return train_gan(generator, discriminator, real, config, rng), generator, discriminator


def test_training_is_deterministic_on_cpu_for_a_seed(real):
    first, g1, _ = _train(real, seed=3)
    second, g2, _ = _train(real, seed=3)

    def losses(result):
        return [(r["step"], r["d_loss"], r["g_loss"], r["d_real"], r["d_fake"]) for r in result.history]

    assert losses(first) == losses(second)
    assert all(torch.equal(a, b) for a, b in zip(g1.state_dict().values(), g2.state_dict().values(), strict=True))
    other, _, _ = _train(real, seed=4)
    assert losses(other) != losses(first)


def test_each_step_draws_fresh_noise_in_mini_batches(real):
    seen = []
    config = TrainingParams(**{**TINY_TRAINING, "epochs": 1, "ema_decay": 0})
    generator, discriminator = build_networks(PRESETS["digits_dcgan"])
    generator.register_forward_pre_hook(lambda module, args: seen.append(args[0].clone()) if module.training else None)
    train_gan(generator, discriminator, real, config, seeded_generator(0, torch.device("cpu")))
    assert len(seen) == len(real) // config.batch_size  # one G forward per step, last partial batch dropped
    assert all(latent.shape == (config.batch_size, 64) for latent in seen)
    assert not torch.equal(seen[0], seen[1])


def test_discriminator_step_leaves_the_generator_alone_and_both_networks_learn(real):
    generator, discriminator = build_networks(PRESETS["digits_dcgan"])
    g_before = [p.clone() for p in generator.parameters()]
    d_before = [p.clone() for p in discriminator.parameters()]
    config = TrainingParams(**{**TINY_TRAINING, "epochs": 1, "ema_decay": 0})
    result = train_gan(generator, discriminator, real, config, seeded_generator(0, torch.device("cpu")))
    assert any(not torch.equal(a, b) for a, b in zip(g_before, generator.parameters(), strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(d_before, discriminator.parameters(), strict=True))
    assert result.generator is generator


def test_history_has_one_row_per_logged_step_with_finite_losses(real):
    result, _, _ = _train(real)
    steps_per_epoch = len(real) // TINY_TRAINING["batch_size"]
    total = TINY_TRAINING["epochs"] * steps_per_epoch
    assert [row["step"] for row in result.history] == [*range(5, total + 1, 5), total][: len(result.history)]
    assert result.history[-1]["step"] == total
    for row in result.history:
        assert set(row) == {"epoch", "step", "d_loss", "g_loss", "d_real", "d_fake", "images_per_second"}
        assert all(torch.isfinite(torch.tensor(value)) for value in row.values())
        assert 0 <= row["d_real"] <= 1 and 0 <= row["d_fake"] <= 1


def test_fixed_noise_snapshots_come_from_the_same_latents_each_epoch(real):
    result, _, _ = _train(real, sample_every_epochs=1)
    assert [epoch for epoch, _ in result.snapshots] == [1, 2]
    assert all(images.shape == (16, 1, 8, 8) for _, images in result.snapshots)


def test_ema_generator_is_what_ships_when_enabled(real):
    result, generator, _ = _train(real, ema_decay=0.9)
    assert result.generator is not generator
    assert type(result.generator) is type(generator)


def test_a_batch_larger_than_the_data_is_refused(real):
    with pytest.raises(ValueError, match=r"training.batch_size \(512\) is larger than the training split \(256"):
        _train(real, batch_size=512)
