"""torch.compile, the CUDA default, exercised on CPU: Inductor compiles G and D to C++ here."""

import shutil

import pytest
import torch

from gan_pipeline.gan.networks import build_networks
from gan_pipeline.gan.presets import PRESETS
from gan_pipeline.gan.runtime import SpeedSettings, seeded_generator
from gan_pipeline.gan.training import train_gan
from tests.conftest import scaled
from tests.settings import tiny_settings

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("c++") is None, reason="Inductor needs a C++ compiler on CPU"),
]


def _losses(real, speed):
    config = tiny_settings(epochs=1, log_every_steps=1)
    rng = seeded_generator(0, torch.device("cpu"))
    generator, discriminator = build_networks(PRESETS["digits_dcgan"])
    result = train_gan(generator, discriminator, real, config, rng, speed=speed)
    return [loss for row in result.history for loss in (row["d_loss"], row["g_loss"])]


def test_compiled_training_follows_eager_training(digits_raw):
    real = scaled(digits_raw.samples[:128])
    eager = _losses(real, SpeedSettings())
    # Compiled code draws dropout masks from its own RNG unless told to use eager's: same masks, same losses.
    with torch._inductor.config.patch(fallback_random=True):
        compiled = _losses(real, SpeedSettings(compile=True))
    assert len(compiled) == len(eager) == 2 * 4
    assert compiled == pytest.approx(eager, rel=1e-3)
