import math

import pytest
import torch
from torch import nn

from gan_pipeline.gan.checkpoints import CheckpointStore
from gan_pipeline.gan.networks import build_networks, with_spectral_norm
from gan_pipeline.gan.presets import PRESETS
from gan_pipeline.gan.runtime import SpeedSettings, seeded_generator
from gan_pipeline.gan.settings import HealthSettings, SettingError, SpeedOptions
from gan_pipeline.gan.training import (
    Checkpointing,
    ExponentialMovingAverage,
    GANTrainer,
    TrainingDivergedError,
    learning_rate_scale,
    sample_images,
    standing_statistics,
    train_gan,
)
from tests.conftest import scaled
from tests.settings import TINY_SETTINGS, tiny_settings


@pytest.fixture
def real(digits_raw):
    return scaled(digits_raw.samples[:256])


def _train(real, seed=0, **overrides):
    config = tiny_settings(seed=seed, **overrides)
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
    config = tiny_settings(epochs=1, ema_decay=0, standing_statistics_batches=0)
    generator, discriminator = build_networks(PRESETS["digits_dcgan"])
    generator.register_forward_pre_hook(lambda module, args: seen.append(args[0].clone()) if module.training else None)
    train_gan(generator, discriminator, real, config, seeded_generator(0, torch.device("cpu")))
    assert len(seen) == len(real) // config.batch_size  # one G forward per step, last partial batch dropped
    assert all(latent.shape == (config.batch_size, 64) for latent in seen)
    assert not torch.equal(seen[0], seen[1])


def test_g_generates_generated_batch_size_samples_per_step_against_batch_size_real_ones(real):
    latent_rows, d_rows = [], []
    config = tiny_settings(epochs=1, batch_size=16, fakes_per_step=48, ema_decay=0, standing_statistics_batches=2)
    generator, discriminator = build_networks(PRESETS["digits_dcgan"])
    generator.register_forward_pre_hook(
        lambda module, args: latent_rows.append(len(args[0])) if module.training else None
    )
    discriminator.register_forward_pre_hook(lambda module, args: d_rows.append(len(args[0])))
    train_gan(generator, discriminator, real, config, seeded_generator(0, torch.device("cpu")))
    steps = len(real) // 16
    # Training steps, then the standing statistics' batches (once, for the last snapshot and the shipped G): all
    # as large as training's fake batches.
    assert latent_rows == [48] * (steps + 2)
    assert d_rows == [16 + 48, 48] * steps  # D(real and fake in one batch), then D(G(z)) for G's update


def test_discriminator_step_leaves_the_generator_alone_and_both_networks_learn(real):
    generator, discriminator = build_networks(PRESETS["digits_dcgan"])
    g_before = [p.clone() for p in generator.parameters()]
    d_before = [p.clone() for p in discriminator.parameters()]
    config = tiny_settings(epochs=1, ema_decay=0)
    result = train_gan(generator, discriminator, real, config, seeded_generator(0, torch.device("cpu")))
    assert any(not torch.equal(a, b) for a, b in zip(g_before, generator.parameters(), strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(d_before, discriminator.parameters(), strict=True))
    assert all(torch.equal(a, b) for a, b in zip(result.generator.parameters(), generator.parameters(), strict=True))


def test_history_has_one_row_per_logged_step_with_finite_losses(real):
    result, _, _ = _train(real)
    steps_per_epoch = len(real) // TINY_SETTINGS.batch_size
    total = TINY_SETTINGS.epochs * steps_per_epoch
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


def test_the_last_snapshot_is_what_the_shipped_generator_makes_of_the_fixed_latents(real):
    """Snapshots show the generator as evaluated (the EMA with standing statistics), not the EMA's raw eval mode."""
    config = tiny_settings(sample_every_epochs=1, ema_decay=0.999, ema_warmup=0)
    generator, discriminator = build_networks(PRESETS["digits_dcgan"])
    trainer = GANTrainer(generator, discriminator, real, config, seeded_generator(config.seed, torch.device("cpu")))
    result = trainer.fit()
    expected = sample_images(result.generator, trainer.fixed_latent)
    assert torch.allclose(result.snapshots[-1][1], expected, atol=1e-6)
    raw_ema = sample_images(trainer.shipped, trainer.fixed_latent)  # what the snapshots showed before
    assert result.snapshots[-1][1].std() > 2 * raw_ema.std()  # early on the raw EMA's samples are near-flat


@pytest.mark.parametrize(("warmup", "share_trained"), [(0.0, (0.0, 0.1)), (0.05, (0.9, 1.0))])
def test_the_ema_warms_up_so_that_a_short_run_ships_trained_weights(warmup, share_trained):
    """G drifts steadily for 100 steps: a plain 0.999 average has moved < 10% of the way, the ramped one > 90%."""
    generator = nn.Linear(4, 4)
    start = generator.weight.detach().clone()
    ema = ExponentialMovingAverage(generator, decay=0.999, warmup=warmup)
    for step in range(1, 101):
        with torch.no_grad():
            generator.weight.add_(0.01)
        ema.update(step)
    moved = (ema.module.weight - start).mean() / (generator.weight - start).mean()
    assert share_trained[0] <= moved.item() <= share_trained[1]
    assert ema.decay_at(1_000_000) == 0.999  # the ramp only caps the decay


def test_ema_generator_is_what_ships_when_enabled(real):
    result, generator, _ = _train(real, ema_decay=0.9)
    assert type(result.generator) is type(generator)
    assert not all(
        torch.equal(a, b) for a, b in zip(result.generator.parameters(), generator.parameters(), strict=True)
    )


class ScaledNoise(nn.Module):
    """Latent x 3 through one BatchNorm: activations of known distribution, N(0, 9)."""

    def __init__(self) -> None:
        super().__init__()
        self.arch = type("Arch", (), {"latent_dim": 4})
        self.norm = nn.BatchNorm1d(4)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        return self.norm(3 * latent)


def test_standing_statistics_make_eval_mode_divide_as_training_batches_did_on_average():
    net, batch_size = ScaledNoise(), 8
    calibrated = standing_statistics(net, batch_size, batches=4000, seed=0)
    # n s^2 / sigma^2 ~ chi2(n - 1) for the biased std s of n gaussian samples: E[1/s] in closed form.
    k = batch_size - 1
    mean_inverse_std = (
        math.sqrt(batch_size) / 3 * math.exp(math.lgamma((k - 1) / 2) - math.lgamma(k / 2)) / math.sqrt(2)
    )
    assert calibrated.norm.running_var == pytest.approx(torch.full((4,), mean_inverse_std**-2), rel=0.03)
    assert mean_inverse_std**-2 < 0.9 * 9  # smaller than the population variance: the point of it
    assert calibrated.norm.running_mean.abs().max() < 0.1
    assert not calibrated.training and torch.equal(net.norm.running_var, torch.ones(4))  # a copy; G is untouched
    unchanged = standing_statistics(net, batch_size, batches=0, seed=0)
    assert torch.equal(unchanged.norm.running_var, net.norm.running_var)


def test_learning_rates_hold_then_fall_linearly_over_the_last_epochs():
    assert [learning_rate_scale(epoch, 10, 0.6) for epoch in range(1, 11)] == pytest.approx(
        [1, 1, 1, 1, 1, 1, 1, 0.75, 0.5, 0.25]
    )
    assert {learning_rate_scale(epoch, 10, 1.0) for epoch in range(1, 11)} == {1.0}


def test_each_epoch_trains_at_its_scheduled_learning_rates(real):
    seen = []
    config = tiny_settings(epochs=4, lr_decay_start=0.5, discriminator_lr=4e-4)
    generator, discriminator = build_networks(PRESETS["digits_dcgan"])
    trainer = GANTrainer(generator, discriminator, real, config, seeded_generator(0, torch.device("cpu")))
    train_epoch = trainer.train_epoch

    def recording(epoch):
        train_epoch(epoch)
        seen.extend(
            [optimizer.param_groups[0]["lr"] for optimizer in (trainer.state.optimizer_g, trainer.state.optimizer_d)]
        )

    trainer.train_epoch = recording
    trainer.fit()
    assert seen == pytest.approx([2e-4, 4e-4] * 3 + [1e-4, 2e-4])  # (G, D) per epoch


def test_a_batch_larger_than_the_data_is_refused_naming_the_setting(real):
    with pytest.raises(SettingError, match=r"batch_size: 512 is larger than the training data \(256 samples\)") as err:
        _train(real, batch_size=512)
    assert err.value.setting == "batch_size"


@pytest.mark.parametrize("loss", ["non_saturating", "lsgan", "hinge", "wgan_gp"])
def test_each_loss_trains_with_finite_moving_losses(real, loss):
    result, _, _ = _train(real, loss=loss, epochs=1, log_every_steps=2, ema_decay=0)
    d_losses = [row["d_loss"] for row in result.history]
    g_losses = [row["g_loss"] for row in result.history]
    assert all(math.isfinite(value) for value in d_losses + g_losses)
    assert len(set(d_losses)) == len(d_losses) and len(set(g_losses)) == len(g_losses)


def test_each_step_makes_discriminator_steps_d_updates_on_distinct_real_batches(real):
    index_of = {row.numpy().tobytes(): index for index, row in enumerate(real)}
    real_rows: list[int] = []
    calls = []
    config = tiny_settings(epochs=1, discriminator_steps=3, batch_size=16)
    generator, discriminator = build_networks(PRESETS["digits_dcgan"])

    def record(module, args):
        calls.append(1)
        real_rows.extend(index_of[r.numpy().tobytes()] for r in args[0].detach() if r.numpy().tobytes() in index_of)

    discriminator.register_forward_pre_hook(record)
    result = train_gan(generator, discriminator, real, config, seeded_generator(0, torch.device("cpu")))
    steps = len(real) // (16 * 3)
    assert result.history[-1]["step"] == steps
    assert len(calls) == steps * (3 + 1)  # per step: 3 x D(real and fake in one batch), then D(G(z)) for G
    assert len(real_rows) == len(set(real_rows)) == steps * 3 * 16


def test_spectral_norm_keeps_every_discriminator_layer_at_unit_spectral_norm(real):
    generator, discriminator = build_networks(PRESETS["digits_dcgan"])
    with_spectral_norm(discriminator)
    config = tiny_settings(epochs=1)
    train_gan(generator, discriminator, real, config, seeded_generator(0, torch.device("cpu")))
    layers = [m for m in discriminator.modules() if isinstance(m, nn.Conv2d | nn.Linear)]
    assert len(layers) == 3
    for layer in layers:
        assert nn.utils.parametrize.is_parametrized(layer, "weight")
        sigma = torch.linalg.matrix_norm(layer.weight.detach().flatten(1), ord=2)
        assert sigma == pytest.approx(1.0, abs=0.1)


def test_bf16_and_channels_last_run_on_cpu_as_they_would_on_cuda(real):
    generator, discriminator = build_networks(PRESETS["digits_dcgan"])
    conv_outputs = []
    first_conv = next(m for m in discriminator.modules() if isinstance(m, nn.Conv2d))
    first_conv.register_forward_hook(lambda module, args, output: conv_outputs.append(output))
    config = tiny_settings(epochs=1)
    speed = SpeedSettings(bf16=True, channels_last=True)
    result = train_gan(generator, discriminator, real, config, seeded_generator(0, torch.device("cpu")), speed=speed)
    assert {output.dtype for output in conv_outputs} == {torch.bfloat16}
    assert first_conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert all(p.dtype == torch.float32 for p in generator.parameters())  # autocast: weights stay fp32
    assert all(math.isfinite(row["d_loss"]) and math.isfinite(row["g_loss"]) for row in result.history)


def test_speed_options_default_to_the_fast_path_on_cuda_only():
    auto = TINY_SETTINGS.speed
    cpu = SpeedSettings.resolve(auto, torch.device("cpu"))
    cuda = SpeedSettings.resolve(auto, torch.device("cuda"))
    assert cpu == SpeedSettings()
    assert cuda == SpeedSettings(bf16=True, channels_last=True, compile=True, cudnn_benchmark=True)
    forced = SpeedSettings.resolve(
        SpeedOptions(precision="bf16", channels_last="auto", compile=True, cudnn_benchmark=True), torch.device("cpu")
    )
    assert forced == SpeedSettings(bf16=True, compile=True)  # cuDNN does not exist on CPU


class NaNAfter(nn.Module):
    """Wraps D and returns NaN once ``poisoned`` is set: a stand-in for a diverging network."""

    def __init__(self, discriminator: nn.Module) -> None:
        super().__init__()
        self.inner, self.poisoned = discriminator, False

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        logits = self.inner(images)
        return logits * float("nan") if self.poisoned else logits


def test_a_non_finite_loss_stops_training_and_keeps_the_last_good_checkpoint(real, tmp_path):
    generator, discriminator = build_networks(PRESETS["digits_dcgan"])
    diverging = NaNAfter(discriminator)
    alerts = []
    steps_per_epoch = len(real) // TINY_SETTINGS.batch_size
    config = tiny_settings(epochs=3, log_every_steps=steps_per_epoch)
    store = CheckpointStore(tmp_path)

    def poison_from_the_first_log_on(step, row):
        diverging.poisoned = True

    with pytest.raises(TrainingDivergedError, match=r"non-finite loss by step 16 .* last good checkpoint is kept"):
        train_gan(
            generator,
            diverging,
            real,
            config,
            seeded_generator(0, torch.device("cpu")),
            on_step=poison_from_the_first_log_on,
            on_alert=lambda key, message: alerts.append(key),
            checkpointing=Checkpointing(store, 1, "digits", trajectory={}, resume=True),
        )
    assert alerts == ["diverged"]
    record = store.latest()
    assert (record.epoch, record.step, record.completed) == (1, steps_per_epoch, False)
    assert all(torch.isfinite(tensor).all() for tensor in store.load(record).values() if tensor.is_floating_point())


def test_a_discriminator_that_wins_outright_is_reported_once_as_a_warning(real, caplog):
    alerts = []
    config = tiny_settings(
        epochs=1,
        log_every_steps=1,
        health=HealthSettings(discriminator_win_score=0.999, discriminator_win_steps=3),  # any D(G(z)) is a win
    )
    generator, discriminator = build_networks(PRESETS["digits_dcgan"])
    train_gan(
        generator,
        discriminator,
        real,
        config,
        seeded_generator(0, torch.device("cpu")),
        on_alert=lambda key, message: alerts.append((key, message)),
    )
    assert [key for key, _ in alerts] == ["discriminator_won"]
    assert "won outright for 3 steps by step 3" in alerts[0][1] and "spectral normalisation" in alerts[0][1]
    assert "won outright" in caplog.text


def test_a_healthy_short_run_raises_no_alert(real):
    alerts = []
    config = TINY_SETTINGS
    generator, discriminator = build_networks(PRESETS["digits_dcgan"])
    train_gan(
        generator,
        discriminator,
        real,
        config,
        seeded_generator(0, torch.device("cpu")),
        on_alert=lambda key, message: alerts.append(key),
    )
    assert alerts == []


def test_pacgan_packing_trains_with_a_packed_discriminator_and_refuses_batches_it_does_not_divide(real):
    config = tiny_settings(packing=2, batch_size=32, epochs=1)
    generator, discriminator = build_networks(PRESETS["digits_dcgan"], packing=2)
    before = [p.detach().clone() for p in discriminator.parameters()]
    result = train_gan(generator, discriminator, real, config, seeded_generator(0, torch.device("cpu")))
    assert result.history and all(math.isfinite(row["d_loss"]) for row in result.history)
    assert any(not torch.equal(a, b) for a, b in zip(before, discriminator.parameters(), strict=True))
    generator, discriminator = build_networks(PRESETS["digits_dcgan"], packing=3)
    with pytest.raises(SettingError, match=r"packing: D scores packs of 3 samples, which do not divide the real batch"):
        train_gan(generator, discriminator, real, tiny_settings(packing=3, batch_size=32), torch.Generator())
