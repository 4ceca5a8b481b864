"""Named architectures, and the one a run trains: a preset (``auto``: made for the data's shape) with overrides."""

import math
from dataclasses import fields, replace
from typing import Any

from gan_pipeline.gan.networks import ARCHITECTURE_FAMILIES, AnyArchitecture, Architecture, MLPArchitecture
from gan_pipeline.gan.settings import SettingError

DCGAN_SIDES = (16, 32, 64, 128, 256)
DCGAN_WIDTH = 64  # pytorch/examples' ngf and ndf
WIDTH = "width"  # an override of the dcgan<side> presets: their base channel count, not a field


def architecture_fields() -> set[str]:
    """Every field a preset override may set, across families, and the DCGAN presets' ``width``."""
    names = {f.name for family in ARCHITECTURE_FAMILIES.values() for f in fields(family)}
    return names - {"image_shape", "sample_shape"} | {WIDTH}


def dcgan(side: int, channels: int = 3, width: int = DCGAN_WIDTH) -> Architecture:
    """pytorch/examples' DCGAN for ``side`` x ``side`` images (Radford et al. 2016), one stage per doubling.

    G projects the latent to maps of the base side (4x4 for a power of two, 7x7 for 28) with ``width``
    doubled once per stage (a transposed convolution of a 1x1 input, written as a dense layer), then halves
    the channels and doubles the side with each 4x4 stride-2 transposed convolution, BatchNorm and ReLU, and
    ends in tanh; D mirrors it with strided convolutions, BatchNorm (not on the first) and LeakyReLU 0.2,
    down to the base side and a logit. Weights start at N(0, 0.02).
    """
    base, stages = side, 0
    while base % 2 == 0 and base // 2 >= 4:
        base, stages = base // 2, stages + 1
    return Architecture(
        image_shape=(channels, side, side),
        latent_dim=100,
        mapping_layers=0,
        base_size=base,
        generator_channels=tuple(width * 2 ** (stages - 1 - stage) for stage in range(stages)),
        generator_strides=(2,) * stages,
        generator_kernel=4,
        generator_output_bias=False,
        generator_output_scale=1.0,
        discriminator_channels=tuple(width * 2**stage for stage in range(stages)),
        discriminator_kernel=4,
        dropout=0.0,
        negative_slope=0.2,
        generator_activation="relu",
        discriminator_batchnorm=True,
        weight_init="dcgan",
    )


PRESETS: dict[str, AnyArchitecture] = {
    # The article's Keras DCGAN for 28x28 MNIST, layer for layer.
    "article_dcgan": Architecture(),
    # The same design scaled to scikit-learn's 8x8 digits: 2x2 -> 4x4 -> 8x8. No dropout in D: on
    # 1.4k training images it cost 1.6x in judge-space Frechet distance; a bias on G's output layer
    # (half of every digit is exactly background, -1) lowers it by about a tenth, and a stretched tanh
    # that reaches -1 and +1 (a tenth of every digit is exactly +1) by about an eighth. Two mapping
    # layers let G warp its Gaussian latent before drawing: over seven runs the ratio to the real floor
    # fell from 2.12 to 1.91 on average (BENCHMARKS.md).
    "digits_dcgan": Architecture(
        image_shape=(1, 8, 8),
        latent_dim=64,
        mapping_layers=2,
        base_size=2,
        generator_channels=(256, 128, 64),
        generator_strides=(1, 2, 2),
        generator_kernel=3,
        generator_output_bias=True,
        generator_output_scale=1.2,
        discriminator_channels=(64, 128),
        discriminator_kernel=3,
        dropout=0.0,
        negative_slope=0.2,
    ),
    # PacGAN-style MLPs for the 2-D Gaussian-mixture benchmarks (ring8, grid25).
    "mlp_2d": MLPArchitecture(),
    # pytorch/examples' DCGAN for square images of any power-of-two side (colour or grey: the data decides).
    **{f"dcgan{side}": dcgan(side) for side in DCGAN_SIDES},
    # The same design for MNIST's 28x28 (7 -> 14 -> 28): 5x fewer operations than the article's network;
    # the Stacked MNIST benchmark's (conf/stacked_mnist). After article_dcgan, so auto keeps the article's.
    "dcgan28": dcgan(28),
}


def made_for(arch: AnyArchitecture, sample_shape: tuple[int, ...]) -> bool:
    """An image preset fits images of its side with 1 or 3 channels; any other preset its exact shape."""
    if isinstance(arch, Architecture) and len(sample_shape) == 3:
        return arch.image_shape[1:] == tuple(sample_shape[1:]) and sample_shape[0] in (1, 3)
    return arch.sample_shape == tuple(sample_shape)


def preset_name(preset: str, sample_shape: tuple[int, ...]) -> str:
    """The preset to use: ``preset`` itself, or for ``auto`` the first one made for ``sample_shape``."""
    if preset == "auto":
        matching = [name for name, arch in PRESETS.items() if made_for(arch, sample_shape)]
        if not matching:
            raise SettingError(
                "preset", f"'auto' finds no preset for samples of shape {tuple(sample_shape)}{nearest(sample_shape)}"
            )
        return matching[0]
    if preset not in PRESETS:
        raise SettingError("preset", f"unknown preset {preset!r}; allowed: {['auto', *PRESETS]}")
    return preset


def nearest(sample_shape: tuple[int, ...]) -> str:
    """For images: the sides presets are made for, nearest first."""
    if len(sample_shape) != 3:
        return f"; presets: { {name: arch.sample_shape for name, arch in PRESETS.items()} }"
    sides = sorted({arch.image_shape[1] for arch in PRESETS.values() if isinstance(arch, Architecture)})
    closest = sorted(sorted(sides, key=lambda side: (abs(math.log2(side / sample_shape[1])), side))[:2])
    return (
        f": presets are made for square images of side {', '.join(map(str, sides))} (1 or 3 channels); "
        f"the nearest are {closest[0]} and {closest[1]}: resize the images to one of them"
    )


def resolve_architecture(preset: str, sample_shape: tuple[int, ...], overrides: dict[str, Any]) -> AnyArchitecture:
    """A buildable architecture: the preset (``auto``: the one made for ``sample_shape``) with ``overrides``.

    Raises ``SettingError`` naming ``preset`` or ``architecture`` (the overrides) when it cannot be built.
    """
    sample_shape = tuple(sample_shape)
    preset = preset_name(preset, sample_shape)
    arch = PRESETS[preset]
    overrides = dict(overrides)
    if WIDTH in overrides and preset.startswith("dcgan") and preset[len("dcgan") :].isdigit():
        arch = dcgan(arch.image_shape[1], width=overrides.pop(WIDTH))
    allowed = {f.name for f in fields(arch)} - {"image_shape", "sample_shape"}
    unknown = set(overrides) - allowed
    if unknown:
        raise SettingError(
            "architecture", f"{sorted(unknown)} are not fields of {preset!r}; allowed: {sorted(allowed)}"
        )
    shape_field = "image_shape" if isinstance(arch, Architecture) else "sample_shape"
    arch = replace(arch, **{**overrides, shape_field: sample_shape})
    problems = arch.problems()
    if problems:
        raise SettingError(
            "architecture" if overrides else "preset",
            f"{preset!r} cannot train on samples of shape {sample_shape}: " + "; ".join(problems),
        )
    return arch
